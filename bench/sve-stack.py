#!/usr/bin/env python3
"""Time per epoch of sve-train over whole transformer layers against PyTorch (run on demand).

    sh examples/sve/stack.sh        # makes OUT/id.N.train.tsr and OUT/basis.N.tsr (N = 1, 2)
    python bench/sve-stack.py --n 1 --members 4 --threads 2

The same factored layers in PyTorch: the last N layers of all-MiniLM-L6-v2, every linear layer as
((x V) ∘ relu(s_m)) Uᵀ + b_m with the members batched on a leading axis, frozen LayerNorms,
softmax attention over each text's tokens (a padded batch with the padding masked, as PyTorch code
does it), mean pooling over real tokens, per-member heads, mean cross-entropy, AdamW lr 1e-3 wd 0.05,
clip 1.0; the same texts, batch size and threads. sve-train's time per epoch is the difference of an
--epochs 3 and an --epochs 1 run, halved (so loading and temperature fitting cancel).
Needs: numpy, torch, zstandard (examples/tensorstream.py), safetensors; the built tools (BIN).
"""
import argparse, math, os, resource, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=1)
ap.add_argument("--members", type=int, default=4)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "examples", "sve", "out", "stack"))
ap.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", "models", "all-MiniLM-L6-v2"))
ap.add_argument("--bin", default=os.environ.get("BIN", os.path.join(os.path.dirname(__file__), "..", ".build", "release")))
ap.add_argument("--skip-swift", action="store_true")
ap.add_argument("--predict", action="store_true",
                help="also time prediction over every text of the file: sve-predict (the whole process, reading "
                     "the stream included, on the model of the --epochs 1 run) against the same PyTorch forward "
                     "under torch.no_grad() in batches of 64 texts (data already in memory)")
a = ap.parse_args()
os.environ["OMP_NUM_THREADS"] = str(a.threads)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import tensorstream as ts  # noqa: E402

torch.set_num_threads(a.threads)
first = 6 - a.n
data = ts.read(open(f"{a.out}/id.{a.n}.train.tsr", "rb"))
x_all, lengths, labels, split = (data[k] for k in ("features", "lengths", "labels", "split"))
offsets = np.concatenate([[0], np.cumsum(lengths)])
train = np.flatnonzero(split == 0)
W = load_file(os.path.join(a.model, "model.safetensors"))
H, HEADS, M, C = 384, 12, a.members, int(labels.max()) + 1

params, frozen = [], {}
def factored(name):
    w = torch.tensor(W[name + ".weight"], dtype=torch.float64)
    u, s, vt = torch.linalg.svd(w, full_matrices=False)
    frozen[name] = (u.float(), vt.float())
    sm = torch.nn.Parameter(s.float().repeat(M, 1) * (1 + 0.01 * torch.randn(M, len(s))))
    bm = torch.nn.Parameter(torch.tensor(W[name + ".bias"]).repeat(M, 1) + 0.01 * torch.randn(M, w.shape[0]))
    params.extend([sm, bm])
    return name, sm, bm
def lin(h, f):
    name, sm, bm = f
    u, vt = frozen[name]
    return ((h @ vt.T) * sm.clamp(min=0)[:, None, None, :]) @ u.T + bm[:, None, None, :]
layers = []
for l in range(first, 6):
    p = f"encoder.layer.{l}."
    layers.append({k: factored(p + n) for k, n in [("q", "attention.self.query"), ("k", "attention.self.key"), ("v", "attention.self.value"),
                                                   ("o", "attention.output.dense"), ("i", "intermediate.dense"), ("f", "output.dense")]}
                  | {"ln1": (torch.tensor(W[p + "attention.output.LayerNorm.weight"]), torch.tensor(W[p + "attention.output.LayerNorm.bias"])),
                     "ln2": (torch.tensor(W[p + "output.LayerNorm.weight"]), torch.tensor(W[p + "output.LayerNorm.bias"]))})
head_w = torch.nn.Parameter(0.01 * torch.randn(M, C, H)); head_b = torch.nn.Parameter(torch.zeros(M, C))
params += [head_w, head_b]

def forward(x, mask):                       # x: (B, L, H), mask: (B, L) bool
    B, L, _ = x.shape
    h = x.expand(M, B, L, H)
    bias = torch.where(mask, 0.0, -1e9)[None, :, None, None, :]
    for ly in layers:
        q, k, v = (lin(h, ly[n]).view(M, B, L, HEADS, H // HEADS).transpose(2, 3) for n in "qkv")
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(H // HEADS) + bias, dim=-1)
        ctx = (att @ v).transpose(2, 3).reshape(M, B, L, H)
        h = torch.nn.functional.layer_norm(h + lin(ctx, ly["o"]), (H,), *ly["ln1"], 1e-12)
        h = torch.nn.functional.layer_norm(h + lin(torch.nn.functional.gelu(lin(h, ly["i"])), ly["f"]), (H,), *ly["ln2"], 1e-12)
    m = mask[None, :, :, None].float()
    pooled = (h * m).sum(2) / m.sum(2)
    return pooled @ head_w.transpose(1, 2) + head_b[:, None, :]   # (M, B, C)

opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05)
order = np.random.default_rng(0).permutation(train)
start, cpu = time.perf_counter(), time.process_time()
for i in range(0, len(order), a.batch):
    ids = order[i:i + a.batch]
    L = int(lengths[ids].max())
    x = torch.zeros(len(ids), L, H); mask = torch.zeros(len(ids), L, dtype=torch.bool)
    for j, t in enumerate(ids):
        n = lengths[t]; x[j, :n] = torch.from_numpy(x_all[offsets[t]:offsets[t] + n]); mask[j, :n] = True
    y = torch.from_numpy(labels[ids].astype(np.int64))
    logits = forward(x, mask)
    loss = torch.stack([torch.nn.functional.cross_entropy(logits[m], y) for m in range(M)]).mean()
    opt.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
torch_epoch, torch_cpu = time.perf_counter() - start, time.process_time() - cpu
print(f"N={a.n} M={M} threads={a.threads}: PyTorch {torch.__version__} {torch_epoch:.1f} s per epoch, {torch_cpu:.1f} s CPU ({len(train)} texts)")
if a.skip_swift:
    sys.exit(0)
def swift(epochs):
    t = time.perf_counter()
    r = subprocess.run([os.path.join(a.bin, "sve-train"), f"{a.out}/id.{a.n}.train.tsr", "--basis", f"{a.out}/basis.{a.n}.tsr",
                    "--layers", f"{first}-5", "--split", f"{a.out}/id_split.tsr", "--members", str(M), "--epochs", str(epochs),
                    "--batch-size", str(a.batch), "--threads", str(a.threads), "-o", f"{a.out}/bench.tsr"], check=True)
    return time.perf_counter() - t, (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_CHILDREN))
t1, c1 = swift(1)
t3, c3 = swift(3)
sw, swc = (t3 - t1) / 2, (c3 - 2 * c1) / 2   # children's CPU times accumulate
print(f"N={a.n} M={M} threads={a.threads}: sve-train {sw:.1f} s per epoch, {swc:.1f} s CPU; "
      f"PyTorch / sve-train = {torch_epoch / sw:.2f} (wall), {torch_cpu / swc:.2f} (CPU)")
if a.predict:
    def batches(ids, size):
        for i in range(0, len(ids), size):
            b = ids[i:i + size]
            L = int(lengths[b].max())
            x = torch.zeros(len(b), L, H); mask = torch.zeros(len(b), L, dtype=torch.bool)
            for j, t in enumerate(b):
                n = lengths[t]; x[j, :n] = torch.from_numpy(x_all[offsets[t]:offsets[t] + n]); mask[j, :n] = True
            yield x, mask
    everything = np.argsort(lengths, kind="stable")   # padding kept small, as a careful user would
    start, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for x, mask in batches(everything, 64):
            torch.softmax(forward(x, mask), dim=-1)
    tp, tpc = time.perf_counter() - start, time.process_time() - cpu
    swift(1)   # the model to predict with (bench.tsr)
    before = (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_CHILDREN))
    t = time.perf_counter()
    with open(f"{a.out}/id.{a.n}.train.tsr", "rb") as f:
        subprocess.run([os.path.join(a.bin, "sve-predict"), "--model", f"{a.out}/bench.tsr", "--threads", str(a.threads)],
                       stdin=f, stdout=subprocess.DEVNULL, check=True)
    sp = time.perf_counter() - t
    spc = (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_CHILDREN)) - before
    print(f"N={a.n} M={M} threads={a.threads}: prediction of {len(lengths)} texts: PyTorch {tp:.1f} s ({tpc:.1f} s CPU), "
          f"sve-predict {sp:.1f} s ({spc:.1f} s CPU); PyTorch / sve-predict = {tp / sp:.2f} (wall), {tpc / spc:.2f} (CPU)")
