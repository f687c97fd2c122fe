"""Benchmark the two streaming UEC programs against the numpy a user would otherwise write:
`emb-laplace apply` (embeddings -> mean and variance through a fitted posterior) and `emb-fuse`
(K probabilistic embeddings -> their uncertainty-weighted fusion), on N x D float32 rows.

Both sides run as whole processes (start-up, reading, computing, writing), in turn, the median of
5 runs after one not counted. The programs read their zstd-compressed streams and write one; the
numpy scripts read .npy files of the same arrays and write .npy. Both write to /dev/null, so the
figure is reading + computing + encoding, not the file system. The outputs are checked against
each other (largest relative difference).

    python3 bench/uec-stream.py [--rows 200000] [--dim 384] [--models 3] [--bin .build/release]
"""
import argparse, os, subprocess, sys, tempfile, time
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=200_000)
ap.add_argument("--dim", type=int, default=384)
ap.add_argument("--models", type=int, default=3)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release"))
args = ap.parse_args()
N, D, K = args.rows, args.dim, args.models
tool = lambda n: os.path.join(args.bin, n)
work = tempfile.mkdtemp(prefix="bench-uec-stream-")
py = sys.executable

def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode:
        sys.exit(f"{cmd[0]}: {p.stderr}")
    return p

def timed_pair(ours, peer):
    """Median wall seconds of `ours` and `peer` (shell command lines), run in turn."""
    a, b = [], []
    for i in range(args.runs + 1):
        for cmd, out in ((ours, a), (peer, b)):
            t = time.perf_counter(); run(["sh", "-c", cmd]); dt = time.perf_counter() - t
            if i: out.append(dt)
    return float(np.median(a)), float(np.median(b))

# Data: K models' embeddings (unit-norm rows, as sentence encoders give) and one posterior per
# model, fitted on 4096 pairs (identity adapter, the default).
rng = np.random.default_rng(0)
for k in range(K):
    e = rng.standard_normal((N, D)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    np.save(f"{work}/e{k}.npy", e)
    run([tool("tensor"), "from", "npy", f"{work}/e{k}.npy", "--name", "embedding", "-o", f"{work}/e{k}.tsr"])
    q = rng.standard_normal((4096, D)).astype(np.float32)
    p = q + 0.5 * rng.standard_normal((4096, D)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True); p /= np.linalg.norm(p, axis=1, keepdims=True)
    np.savez(f"{work}/pairs{k}.npz", query=q, positive=p)
    run([tool("tensor"), "from", "npz", f"{work}/pairs{k}.npz", "-o", f"{work}/pairs{k}.tsr"])
    run([tool("emb-laplace"), "fit", f"{work}/pairs{k}.tsr", "-o", f"{work}/post{k}.tsr"])
    run([tool("tensor"), "to", "npz", f"{work}/post{k}.tsr", "-o", f"{work}/post{k}.npz"])
    run([tool("emb-laplace"), "apply", "--posterior", f"{work}/post{k}.tsr", f"{work}/e{k}.tsr", "-o", f"{work}/p{k}.tsr"])
    run([tool("tensor"), "to", "npz", f"{work}/p{k}.tsr", "-o", f"{work}/p{k}.npz"])

# The numpy peers: methods.md 1.1 (apply, identity adapter) and 1.2 (fusion, the paper's weights).
apply_py = f"""
import numpy as np, sys
post = np.load("{work}/post0.npz")
vw, vb = post["var_weight"].astype(np.float32), post["var_bias"].astype(np.float32)
c = np.float32(post["variance_scale"]) if "variance_scale" in post else np.float32(1)
e = np.load("{work}/e0.npy")
var = c * ((e * e) @ vw.T + vb)
with open(sys.argv[1], "wb") as f:
    np.save(f, e); np.save(f, var)
"""
fuse_py = f"""
import numpy as np, sys
ms, vs = [], []
for k in range({K}):
    z = np.load(f"{work}/p{{k}}.npz"); ms.append(z["mean"]); vs.append(z["var"])
s = -np.stack([v.sum(1, dtype=np.float64) for v in vs], 1)
s = np.exp(s - s.max(1, keepdims=True)); pi = s / s.sum(1, keepdims=True)
mu = sum(pi[:, k, None].astype(np.float32) * ms[k] for k in range({K}))
var = sum((pi[:, k, None] ** 2).astype(np.float32) * vs[k] for k in range({K}))
with open(sys.argv[1], "wb") as f:
    np.save(f, mu); np.save(f, var); np.save(f, pi.astype(np.float32))
"""
for name, src in (("apply", apply_py), ("fuse", fuse_py)):
    open(f"{work}/{name}.py", "w").write(src)
# The .npz of the probabilistic embeddings are compressed by nothing: numpy reads them as fast as .npy.

# Checks: the programs' outputs against numpy's.
run([py, f"{work}/apply.py", f"{work}/apply-np.npy"])
run([tool("emb-laplace"), "apply", "--posterior", f"{work}/post0.tsr", f"{work}/e0.tsr", "-o", f"{work}/apply.tsr"])
run([tool("tensor"), "to", "npz", f"{work}/apply.tsr", "-o", f"{work}/apply.npz"])
with open(f"{work}/apply-np.npy", "rb") as f:
    np.load(f); var_np = np.load(f)
rel_apply = float(np.abs(np.load(f"{work}/apply.npz")["var"] - var_np).max() / np.abs(var_np).max())
run([py, f"{work}/fuse.py", f"{work}/fuse-np.npy"])
fused = " ".join(f"{work}/p{k}.tsr" for k in range(K))
run(["sh", "-c", f"{tool('emb-fuse')} {fused} -o {work}/fused.tsr"])
run([tool("tensor"), "to", "npz", f"{work}/fused.tsr", "-o", f"{work}/fused.npz"])
with open(f"{work}/fuse-np.npy", "rb") as f:
    mu_np = np.load(f); np.load(f); pi_np = np.load(f)
z = np.load(f"{work}/fused.npz")
rel_fuse = float(max(np.abs(z["mean"] - mu_np).max() / np.abs(mu_np).max(), np.abs(z["weights"] - pi_np).max()))

t_apply, t_apply_np = timed_pair(f"{tool('emb-laplace')} apply --posterior {work}/post0.tsr {work}/e0.tsr > /dev/null",
                                 f"{py} {work}/apply.py /dev/null")
t_fuse, t_fuse_np = timed_pair(f"{tool('emb-fuse')} {fused} > /dev/null", f"{py} {work}/fuse.py /dev/null")
# What the output's codec costs: `tensor cat --level 1` of the output stream decodes it and
# compresses it again (without --level, cat copies the records it read as they came, and apply
# copies its input's records as its means: neither compresses them again).
t_cat, t_cat_copy = timed_pair(f"{tool('tensor')} cat --level 1 {work}/apply.tsr > /dev/null",
                               f"{tool('tensor')} cat {work}/apply.tsr > /dev/null")

print(f"\n{N} rows x {D}, {K} models; whole processes, median of {args.runs}, written to /dev/null")
print("| program | what | this project s | numpy s | numpy / ours | check |")
print("| --- | --- | ---: | ---: | ---: | --- |")
print(f"| emb-laplace apply | mean and var of {N} embeddings | {t_apply:.3f} | {t_apply_np:.3f} | {t_apply_np / t_apply:.2f} | max rel diff of var {rel_apply:.1e} |")
print(f"| emb-fuse | {K} probabilistic embeddings -> 1 | {t_fuse:.3f} | {t_fuse_np:.3f} | {t_fuse_np / t_fuse:.2f} | max diff {rel_fuse:.1e} |")
print(f"| tensor cat --level 1 | decode + encode apply's output (its codec cost) | {t_cat:.3f} | | | apply / cat = {t_apply / t_cat:.2f} |")
print(f"| tensor cat | decode apply's output, copy its records | {t_cat_copy:.3f} | | | cat / cat --level 1 = {t_cat_copy / t_cat:.2f} |")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summary import bench_result  # noqa: E402
bench_result("emb-laplace apply", f"{N} x {D} embeddings -> mean, var; wall s (peer numpy from .npy)", t_apply, t_apply_np)
bench_result("emb-laplace apply", "wall s (peer: tensor cat --level 1 of its output, its codec cost; goal ratio >= 0.67)", t_apply, t_cat)
bench_result("tensor", "cat of apply's output: records checked and copied, wall s (peer: cat --level 1, compressing them again)", t_cat_copy, t_cat)
bench_result("emb-fuse", f"{K} x {N} x {D} probabilistic embeddings, wall s (peer numpy from .npz)", t_fuse, t_fuse_np)
subprocess.run(["rm", "-rf", work])
