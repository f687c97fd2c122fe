#!/usr/bin/env python3
"""Benchmark `emb-laplace fit` (diagonal empirical Fisher of in-batch InfoNCE for a real last
layer, three GEMMs per batch, float64) against
  (a) torch.func per-sample gradients of the same two-sided InfoNCE loss (vmap of grad), the
      exact same quantity, to check it and time it;
  (b) laplace-torch's diagonal empirical-Fisher backends (BackPackEF, CurvlinopsEF) on the same
      layer. They need per-sample outputs f(x_n), so the positives of each batch are held fixed
      as a classification head (logits = z(q)·z(p_j)/τ, label n): the query-side Fisher only,
      which is what a laplace-torch user gets; it is checked against its closed form
      (A∘A)ᵀ(H∘H).
Reports wall time (emb-laplace: the median of 5 runs), GFLOP/s against this machine's sgemm/dgemm rates and peak RSS.

    python3 bench/emb-laplace.py [--pairs 4096] [--inputs 1536] [--dim 384] [--bin .build/release]
"""
import argparse, json, os, re, subprocess, sys, tempfile, time
import numpy as np
import torch
import warnings
warnings.filterwarnings("ignore")

ap = argparse.ArgumentParser()
ap.add_argument("--pairs", type=int, default=4096)
ap.add_argument("--inputs", type=int, default=1536)
ap.add_argument("--dim", type=int, default=384)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--tau", type=float, default=1.0)
ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release"))
args = ap.parse_args()
N, P, D, B, tau = args.pairs, args.inputs, args.dim, args.batch, args.tau
work = tempfile.mkdtemp(prefix="bench-emb-laplace-")
tool = lambda n: os.path.join(args.bin, n)
torch.set_num_threads(os.cpu_count())

rng = np.random.default_rng(0)
W = (rng.standard_normal((D, P)) / np.sqrt(P)).astype(np.float32)
b = (0.1 * rng.standard_normal(D)).astype(np.float32)
# GELU/ReLU-like layer inputs, scaled so that the InfoNCE softmax is not saturated (s = O(1)).
Hq = (0.1 * np.maximum(rng.standard_normal((N, P)), 0)).astype(np.float32)
Hp = (0.1 * np.maximum(10 * Hq + 0.5 * rng.standard_normal((N, P)), 0)).astype(np.float32)
LAM = 1e-8  # tiny, so that F = 1/v − λ is recovered from the posterior without cancellation
np.savez(f"{work}/layer.npz", weight=W, bias=b)
np.savez(f"{work}/pairs.npz", query=Hq, positive=Hp)
for n in ("layer", "pairs"):
    subprocess.run([tool("tensor"), "from", "npz", f"{work}/{n}.npz", "-o", f"{work}/{n}.tsr"], check=True)

def gemm_rate(dtype, m=B, n=P, k=D, reps=200):
    a = rng.standard_normal((k, m)).astype(dtype); c = rng.standard_normal((m, n)).astype(dtype)
    a @ c
    t = time.perf_counter()
    for _ in range(reps): a @ c
    return 2 * m * n * k * reps / (time.perf_counter() - t) / 1e9
rates = {dt: (gemm_rate(dt), gemm_rate(dt, 1024, 1024, 1024, 5)) for dt in (np.float32, np.float64)}
print(f"gemm rates (numpy/OpenBLAS, {os.cpu_count()} cores): sgemm {rates[np.float32][0]:.1f} GFLOP/s on the fit's shape "
      f"({D}x{B} by {B}x{P}), {rates[np.float32][1]:.1f} on 1024^3; dgemm {rates[np.float64][0]:.1f} / {rates[np.float64][1]:.1f}")
flops = 10 * N * D * P  # forward of both sides (4NDP) + the three Fisher GEMMs (6NDP)

# emb-laplace fit
cmd = ["/usr/bin/time", "-v", tool("emb-laplace"), "fit", "--layer", f"{work}/layer.tsr", "--batch-size", str(B),
       "--temperature", str(tau), "--prior-precision", str(LAM), f"{work}/pairs.tsr", "-o", f"{work}/post.tsr"]
# The default: the same fit with λ fitted by MacKay's fixed point (no --prior-precision).
i_prior = cmd.index("--prior-precision")
cmd_fitted = cmd[:i_prior] + cmd[i_prior + 2:-1] + [f"{work}/post-fitted.tsr"]
# The median wall time of 5 runs after one not counted (the machine's speed drifts), the two
# commands in turn; largest peak. numpy's dgemm of 1024^3 is timed again just before every run of
# the fit with λ given, so that the share of it the fit reaches is taken run by run, in the same
# phase of a machine whose speed drifts (the median of the five shares), not against a rate
# measured minutes earlier.
walls, walls_fitted, dgemm_spot, rss = [], [], [], 0.0
for i in range(6):
    for c, w in ((cmd, walls), (cmd_fitted, walls_fitted)):
        if c is cmd and i:
            dgemm_spot.append(gemm_rate(np.float64, 1024, 1024, 1024, 5))
            time.sleep(0.5)   # OpenBLAS's threads in this process spin for a while after a GEMM
        t = time.perf_counter(); p = subprocess.run(c, capture_output=True, text=True); dt = time.perf_counter() - t
        if p.returncode: sys.exit(p.stderr)
        if i: w.append(dt)
        rss = max(rss, int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024)
median = lambda v: sorted(v)[len(v) // 2]
t_tool = median(walls)
t_fitted = median(walls_fitted)
shares = [flops / w / 1e9 / r for w, r in zip(walls, dgemm_spot)]
share, dgemm_rate = median(shares), median(dgemm_spot)
print(f"share of numpy's dgemm 1024^3 reached, run by run (dgemm timed just before each run): "
      + ", ".join(f"{s:.2f} ({r:.0f})" for s, r in zip(shares, dgemm_spot)) + f"; median {share:.2f}")
meta = json.loads(subprocess.run([tool("tensor"), "info", "--json", f"{work}/post-fitted.tsr"], check=True,
                                 capture_output=True, text=True).stdout)
prior_meta = lambda m, key: next(t["meta"][key] for t in m if key in t["meta"])
subprocess.run([tool("tensor"), "to", "npy", "--tensor", "var_weight", f"{work}/post.tsr", "-o", f"{work}/vw.npy"], check=True)
F_tool = 1 / np.load(f"{work}/vw.npy") - LAM

# (a) torch.func: exact per-sample gradients of the two-sided loss
from torch.func import functional_call, grad, vmap
Wt, bt = torch.tensor(W, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
Hqt, Hpt = torch.tensor(Hq, dtype=torch.float64), torch.tensor(Hp, dtype=torch.float64)
def loss_n(W, b, hq, hp, e):  # e: one-hot of the sample's row (vmap needs no indexing by data)
    zq = hq @ W.T + b; zp = hp @ W.T + b
    s = (e @ zq) @ zp.T / tau
    return -(s @ e) + torch.logsumexp(s, 0)
g = vmap(grad(loss_n, argnums=(0, 1)), in_dims=(None, None, None, None, 0))
t = time.perf_counter()
F_torch = torch.zeros_like(Wt)
for s in range(0, N, B):
    hq, hp = Hqt[s:s + B], Hpt[s:s + B]
    gw, gb = g(Wt, bt, hq, hp, torch.eye(hq.shape[0], dtype=torch.float64))
    F_torch += (gw ** 2).sum(0)
t_torch = time.perf_counter() - t
rel = np.abs(F_tool - F_torch.numpy()).max() / np.abs(F_torch.numpy()).max()

print(f"\n{N} pairs, layer {D}x{P}, batch {B}, tau {tau}")
print("| method | quantity | wall s | GFLOP/s | peak RSS MiB | vs emb-laplace | check |")
print("| --- | --- | --- | --- | --- | --- | --- |")
print(f"| emb-laplace fit (incl. reading {N} pairs) | two-sided EF, float64 | {t_tool:.2f} | {flops/t_tool/1e9:.1f} "
      f"({100*share:.0f}% of dgemm 1024³, run by run) | {rss:.0f} | 1.00 | - |")
print(f"| emb-laplace fit, λ fitted (the default) | same, and MacKay's λ | {t_fitted:.2f} | - | - | "
      f"{t_fitted/t_tool:.2f}x the fit with λ given | λ = {prior_meta(meta, 'prior_precision')} in "
      f"{prior_meta(meta, 'prior_iterations')} passes |")
print(f"| torch.func vmap(grad), float64 | two-sided EF | {t_torch:.2f} | - | - | {t_torch/t_tool:.1f}x slower | max rel diff {rel:.1e} |")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summary import bench_result  # noqa: E402
bench_result("emb-laplace fit", f"{N} pairs, {D}x{P} layer, wall s (peer torch.func per-sample grads)", t_tool, t_torch)
bench_result("emb-laplace fit", "λ fitted (the default), wall s (peer: the same fit with λ given)", t_fitted, t_tool)
bench_result("emb-laplace fit", f"GFLOP/s (peer: numpy dgemm 1024^3 timed before each run; ratio = median share of it reached)",
             flops / t_tool / 1e9, dgemm_rate, share)

# (b) laplace-torch backends, query side only
try:
    import laplace.curvature as lc
    import torch.nn as nn
    Hq32, Hp32 = torch.tensor(Hq), torch.tensor(Hp)
    for name in ("BackPackEF", "CurvlinopsEF", "AsdlEF"):
        cls = getattr(lc, name, None)
        if cls is None:
            print(f"| laplace-torch {name} | not available | | | | | |"); continue
        lin = nn.Linear(P, D); lin.weight.data = torch.tensor(W); lin.bias.data = torch.tensor(b)
        head = nn.Linear(D, B, bias=False)  # its gradient is computed too (BackPACK needs it) and ignored
        model = nn.Sequential(lin, head)
        try:
            backend = cls(model, likelihood="classification")
            t = time.perf_counter()
            FW = torch.zeros(D, P); ok = True
            for s in range(0, N - B + 1, B):
                with torch.no_grad():
                    head.weight.data = (Hp32[s:s + B] @ lin.weight.T + lin.bias) / tau
                _, diag = backend.diag(Hq32[s:s + B], torch.arange(B))
                FW += diag[: D * P].reshape(D, P)
            t_lt = time.perf_counter() - t
            # check against the query-side closed form (A∘A)ᵀ(H∘H)
            FQ = np.zeros((D, P))
            for s in range(0, N - B + 1, B):
                hq, hp = Hq[s:s + B].astype(np.float64), Hp[s:s + B].astype(np.float64)
                zq, zp = hq @ W.T.astype(np.float64) + b, hp @ W.T.astype(np.float64) + b
                S = zq @ zp.T / tau; S = np.exp(S - S.max(1, keepdims=True)); S /= S.sum(1, keepdims=True)
                A = (S - np.eye(B)) @ zp / tau
                FQ += (A * A).T @ (hq * hq)
            relq = np.abs(FW.numpy() - FQ).max() / np.abs(FQ).max()
            print(f"| laplace-torch {name} (diag), float32 | query-side EF | {t_lt:.2f} | - | - | {t_lt/t_tool:.1f}x slower | vs (A∘A)ᵀ(H∘H): {relq:.1e} |")
        except Exception as e:  # report, do not hide
            print(f"| laplace-torch {name} | failed: {type(e).__name__}: {str(e)[:80]} | | | | | |")
except ImportError as e:
    print(f"| laplace-torch | not installed ({e}) | | | | | |")
