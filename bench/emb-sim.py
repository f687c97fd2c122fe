#!/usr/bin/env python3
"""Benchmark emb-sim top-k against the same blocked computation in numpy, plain-cosine top-k
against faiss-cpu's IndexFlatIP (if importable), and both against the plain sgemm of the same
shapes on the same OpenBLAS (bench/sgemm.c, --sgemm: its GEMMs alone, the limit). Also emb-sim
--precision int16 and int8 (exact top-k, integer first pass). Reports wall time, GFLOP/s against this
machine's sgemm rate, ratios to emb-sim, to the sgemm yardstick and to numpy, agreement of the
results, and emb-sim's peak RSS (/usr/bin/time -v).

    python3 bench/emb-sim.py [--corpus-rows 300000] [--queries 2000] [--bin .build/release] [--sgemm PATH]

Run on demand (never in tests), with a release build:  make release
"""
import argparse, os, re, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--corpus-rows", type=int, default=300_000)
ap.add_argument("--queries", type=int, default=2000)
ap.add_argument("--dim", type=int, default=384)
ap.add_argument("--k", type=int, default=10)
ap.add_argument("--block", type=int, default=4096)
ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release"))
ap.add_argument("--work", default=None)
ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every contestant")
ap.add_argument("--sgemm", default=None, help="the yardstick built from bench/sgemm.c (bench/emb-sim.sh builds it)")
args = ap.parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
import numpy as np  # after the thread count is set
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summary import bench_result
Q, M, D, K, B = args.queries, args.corpus_rows, args.dim, args.k, args.block
tool = lambda n: os.path.join(args.bin, n)
work = args.work or tempfile.mkdtemp(prefix="bench-emb-sim-")

rng = np.random.default_rng(0)
def unit(x): return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
qm = unit(rng.standard_normal((Q, D), dtype=np.float32))
qv = rng.uniform(1e-4, 2e-3, (Q, D)).astype(np.float32)
cm = unit(rng.standard_normal((M, D), dtype=np.float32))
cv = rng.uniform(1e-4, 2e-3, (M, D)).astype(np.float32)
# Plant near-duplicates so that the top hits are meaningful.
cm[:Q] = unit(qm + 0.3 * rng.standard_normal((Q, D), dtype=np.float32))

def to_stream(name, mean, var):
    np.save(f"{work}/{name}_mean.npy", mean); np.save(f"{work}/{name}_var.npy", var)
    for t in ("mean", "var"):
        subprocess.run([tool("tensor"), "from", "npy", f"{work}/{name}_{t}.npy", "--name", t, "--level", "1",
                        "-o", f"{work}/{name}_{t}.tsr"], check=True)
    subprocess.run([tool("tensor"), "paste", f"{work}/{name}_mean.tsr", f"{work}/{name}_var.tsr", "--level", "1",
                    "-o", f"{work}/{name}.tsr"], check=True)
to_stream("queries", qm, qv)
to_stream("corpus", cm, cv)

# This machine's sgemm rate (numpy's OpenBLAS, all cores) on the shapes emb-sim uses.
def sgemm_rate(m, n, k, reps=5):
    a = rng.standard_normal((m, k), dtype=np.float32); b = rng.standard_normal((n, k), dtype=np.float32)
    a @ b.T
    t = time.perf_counter()
    for _ in range(reps): a @ b.T
    return 2 * m * n * k * reps / (time.perf_counter() - t) / 1e9
rate_block = sgemm_rate(min(Q, 1024), B, D)
rate_square = sgemm_rate(2048, 2048, 2048, reps=3)
print(f"sgemm (numpy/OpenBLAS, {args.threads} threads): {rate_block:.1f} GFLOP/s on {min(Q,1024)}x{B}x{D}, {rate_square:.1f} GFLOP/s on 2048^3")

v = subprocess.run([tool("emb-sim"), "-v", "--corpus", f"{work}/corpus_mean.tsr", "--top-k", "1", "--threads", str(args.threads),
                    f"{work}/queries.tsr", "-o", f"{work}/probe.tsr"], capture_output=True, text=True)
print(v.stderr.strip())
print("load average (1, 5, 15 min):", " ".join(f"{x:.2f}" for x in os.getloadavg()), "(a shared machine: figures are noisy)")

def run_tool(beta, precision="f32"):
    # Plain cosine reads a corpus of means only (as a user would give it); β > 0 reads mean+var.
    # Default blocks: the corpus is decoded once, queries in one block (within --memory).
    corpus = f"{work}/corpus.tsr" if beta else f"{work}/corpus_mean.tsr"
    cmd = ["/usr/bin/time", "-v", tool("emb-sim"), "--corpus", corpus, "--top-k", str(K), "--threads", str(args.threads),
           "--beta", str(beta), "--precision", precision, "--corpus-block", str(B), f"{work}/queries.tsr",
           "-o", f"{work}/hits.tsr"]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0: sys.exit(p.stderr)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    subprocess.run([tool("tensor"), "to", "npy", "--tensor", "indices", f"{work}/hits.tsr", "-o", f"{work}/idx.npy"], check=True)
    return wall, rss / 1024, np.load(f"{work}/idx.npy")

def numpy_topk(beta):
    """The same computation in numpy: blocks of the corpus, two GEMMs, argpartition merge."""
    best_s = np.full((Q, K), -np.inf, np.float32); best_i = np.zeros((Q, K), np.int64)
    qside = np.concatenate([qm * qm, qv], 1)
    for s in range(0, M, B):
        c, v = cm[s:s + B], cv[s:s + B]
        S = qm @ c.T
        if beta:
            S2 = qside @ np.concatenate([v, c * c + v], 1).T
            S = S / np.sqrt(1 + beta * np.pi / 8 * S2)
        allS = np.concatenate([best_s, S], 1)
        allI = np.concatenate([best_i, np.broadcast_to(np.arange(s, s + c.shape[0]), S.shape)], 1)
        part = np.argpartition(-allS, K - 1, axis=1)[:, :K]
        best_s = np.take_along_axis(allS, part, 1); best_i = np.take_along_axis(allI, part, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, 1)

full_gb = Q * M * 4 / 2**30
# The machine is shared: the sgemm rate is measured again before every contestant and the best
# rate seen is the reference; every contestant runs twice and keeps its best time.
best_rate = [max(rate_block, rate_square)]
def measure(fn):
    best_rate[0] = max(best_rate[0], sgemm_rate(min(Q, 1024), B, D))
    runs = [fn() for _ in range(2)]
    return min(runs, key=lambda r: r[0])
def sgemm_run(beta):
    cmd = [args.sgemm, f"{work}/queries_mean.npy", f"{work}/corpus_mean.npy", "--block", str(B)] + (["--uncertain"] if beta else [])
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t, None
rows = []
for beta, label, flops in [(0, "cosine", 2 * Q * M * D), (1, "uncertainty-aware", 6 * Q * M * D)]:
    ts = measure(lambda: sgemm_run(beta))[0] if args.sgemm else float("nan")
    wall, rss, idx = measure(lambda: run_tool(beta))
    rows.append((f"emb-sim {label} (incl. reading {M} rows)", wall, flops, f"{rss:.0f}", wall, "-"))
    if beta == 0:
        for precision in ("int16", "int8"):
            wi, rssi, idxi = measure(lambda: run_tool(beta, precision))
            rows.append((f"emb-sim {label} --precision {precision}", wi, flops, f"{rssi:.0f}", wall, f"indices identical {(idxi == idx).mean():.4f}"))
    rows.append((f"plain sgemm, same shapes and OpenBLAS (reads the .npy)", ts, flops, "-", wall, "-"))
    def np_run():
        t = time.perf_counter(); r = numpy_topk(beta); return time.perf_counter() - t, r
    tn, nidx = measure(np_run)
    rows.append((f"numpy {label} (data in memory)", tn, flops, "-", wall, f"top-1 {(nidx[:, 0] == idx[:, 0]).mean():.4f}"))
    if beta == 0:
        try:
            import faiss
            faiss.omp_set_num_threads(args.threads)
            def faiss_run():
                index = faiss.IndexFlatIP(D)
                t = time.perf_counter(); index.add(cm); _, fidx = index.search(qm, K); return time.perf_counter() - t, fidx
            tf, fidx = measure(faiss_run)
            rows.append(("faiss IndexFlatIP (add+search, in memory)", tf, flops, "-", wall, f"top-1 {(fidx[:, 0] == idx[:, 0]).mean():.4f}"))
        except ImportError:
            rows.append(("faiss-cpu (not installed)", float("nan"), flops, "-", wall, "-"))
print(f"corpus {M} x {D}, {Q} queries, top-{K}; a full score matrix would be {full_gb:.2f} GiB; "
      f"best sgemm rate seen: {best_rate[0]:.1f} GFLOP/s ({args.threads} threads)")
print("| method | wall s (best of 2) | GFLOP/s | % of sgemm rate | peak RSS MiB | time / emb-sim | time / plain sgemm | agreement |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
yard = {}
for name, t, flops, rss, ref, agree in rows:
    if name.startswith("plain sgemm"): yard[flops] = t
for name, t, flops, rss, ref, agree in rows:
    g = flops / t / 1e9
    ys = yard.get(flops, float("nan"))
    # emb-sim's uncertainty-aware search does not do the second GEMM (σ_s² only for the pairs that
    # can enter a top-k): its rate is the GEMM formulation's work over its time, in parentheses.
    rate, share = (f"({g:.1f})", f"({100 * g / best_rate[0]:.0f}%)") if name.startswith("emb-sim uncertainty") \
        else (f"{g:.1f}", f"{100 * g / best_rate[0]:.0f}%")
    print(f"| {name} | {t:.2f} | {rate} | {share} | {rss} | {t / ref:.2f} | {t / ys:.2f} | {agree} |")
print("In parentheses: the two GEMMs' work (inner D and 2D) over emb-sim's time; emb-sim does the first "
      "and computes σ_s² only for the pairs that can enter a top-k (ŝ ≤ μ_s).")
# make bench's summary table: emb-sim against each peer of the same mode (seconds, lower is better).
what = f"top-k {Q} q x {M} x {D}, s"
emb = {flops: t for name, t, flops, rss, ref, agree in rows if name.startswith("emb-sim") and "--precision" not in name}
for name, t, flops, rss, ref, agree in rows:
    if not name.startswith("emb-sim") and t == t:
        mode = "cosine" if flops == 2 * Q * M * D else "uncertainty-aware"
        bench_result("emb-sim", f"{mode} {what} vs {name.split(' (')[0]}", emb[flops], t)
    elif "--precision" in name:
        precision = name.split("--precision ")[1]
        bench_result("emb-sim", f"--precision {precision} {what} vs f32", t, emb[flops])
# The integer passes against faiss (exact top-k, the same indices as the f32 search's).
faiss_t = [t for name, t, flops, rss, ref, agree in rows if name.startswith("faiss IndexFlatIP")]
for name, t, flops, rss, ref, agree in rows:
    if "--precision" in name and faiss_t and faiss_t[0] == faiss_t[0]:
        bench_result("emb-sim", f"--precision {name.split('--precision ')[1]} {what} vs faiss IndexFlatIP", t, faiss_t[0])

