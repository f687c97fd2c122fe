#!/usr/bin/env python3
"""Benchmark calib-metrics against the Python reference libraries computing the same set.

    make release venv-bench
    .venv/bin/python bench/calib-metrics.py                # all sizes below
    .venv/bin/python bench/calib-metrics.py --sizes 1e6x10 # one size

The set, on float32 probabilities N×K with int64 labels:
  accuracy; top-label ECE/MCE/RMSCE in the default binning (sklearn calibration_curve 'uniform'),
  in torchmetrics' (multiclass_calibration_error, l1/max/l2) and netcal's (ECE); equal-mass ECE
  (calibration_curve 'quantile'); classwise ECE (calibration_curve per class); NLL (log_loss);
  Brier (brier_score_loss, multiclass); AURC (numpy, argsort).
Swift: `calib-metrics --json --labels labels.tsr probs.tsr` — wall time including reading and
decompressing the tensor stream (median of 5 runs, 3 above a second, after one not counted), peak RSS from /usr/bin/time or getrusage. Python: compute time
after the arrays are in memory (their load time printed apart). The two in turn, five times where
Python's run is short (N·K ≤ 10^7), three times up to 10^8, once above: the ratio is the median of
the pairs' ratios, each Python run against our median just before it. sklearn's log_loss and
brier_score_loss run on blocks of 100 000 rows (their one-hot copies would not fit the budget
otherwise); netcal runs only where its clipped copy of the probabilities fits (N·K·4 ≤ 1 GB).

Memory cap ~8 GB: 10^7×1000 float32 is 40 GB and is not run; 10^6×1000 and 10^7×100 (4 GB of
probabilities) are the largest combos.
"""
import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from summary import bench_result  # noqa: E402


def parse_size(s):
    n, k = s.lower().split("x")
    return int(float(n)), int(k)


def generate(work, n, k, seed=0):
    d = work / f"{n}x{k}"
    d.mkdir(parents=True, exist_ok=True)
    probs_tsr, labels_tsr = d / "probs.tsr", d / "labels.tsr"
    if probs_tsr.exists() and labels_tsr.exists():
        return d
    rng = np.random.default_rng(seed)
    pn = d / "probs.npy"
    mm = np.lib.format.open_memmap(pn, mode="w+", dtype=np.float32, shape=(n, k))
    labels = np.empty(n, dtype=np.int64)
    step = max(1, 4_000_000 // k)
    for i in range(0, n, step):
        j = min(n, i + step)
        z = rng.normal(size=(j - i, k)).astype(np.float32) * 2.5
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        mm[i:j] = p
        # Labels from a sharpened copy: the model is miscalibrated (over-confident).
        q = p.astype(np.float64) ** 0.6
        q /= q.sum(axis=1, keepdims=True)
        u = rng.uniform(size=(j - i, 1))
        labels[i:j] = np.minimum((q.cumsum(axis=1) < u).sum(axis=1), k - 1)
    mm.flush()
    del mm
    np.save(d / "labels.npy", labels)
    tensor = ROOT / ".build/release/tensor"
    subprocess.run([str(tensor), "from", "npy", str(pn), "--name", "probs", "-o", str(probs_tsr)], check=True)
    subprocess.run([str(tensor), "from", "npy", str(d / "labels.npy"), "--name", "labels", "-o", str(labels_tsr)], check=True)
    return d


def run_swift_once(cmd):
    timer = "/usr/bin/time"
    t0 = time.perf_counter()
    if os.path.exists(timer):
        r = subprocess.run([timer, "-f", "%M"] + cmd, capture_output=True, text=True)
        rss_mb = int(r.stderr.strip().splitlines()[-1]) / 1024
    else:
        r = subprocess.run(cmd, capture_output=True, text=True)
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"calib-metrics failed: {r.stderr}")
    return dt, rss_mb, r.stdout


def run_swift(d, extra):
    """The median wall time of 5 runs (3 when one takes over a second) after one not counted,
    the largest peak RSS, and the report."""
    exe = ROOT / ".build/release/calib-metrics"
    cmd = [str(exe), "--json", "--labels", str(d / "labels.tsr"), str(d / "probs.tsr")] + extra
    first, _, out = run_swift_once(cmd)
    runs = [run_swift_once(cmd) for _ in range(5 if first < 1 else 3)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs), json.loads(out)


def run_python(d, n, k, bins=15):
    import sklearn.calibration
    import sklearn.metrics
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error
    import netcal.metrics

    t0 = time.perf_counter()
    p = np.load(d / "probs.npy")
    y = np.load(d / "labels.npy")
    load = time.perf_counter() - t0
    out, times = {}, {}

    def timed(name, f):
        t = time.perf_counter()
        out[name] = f()
        times[name] = time.perf_counter() - t

    def curve_ece(conf, hit, strategy):
        pt, pp = sklearn.calibration.calibration_curve(hit, conf, n_bins=bins, strategy=strategy)
        if strategy == "uniform":
            edges = np.linspace(0, 1, bins + 1)
        else:
            edges = np.percentile(conf, np.linspace(0, 1, bins + 1) * 100)
        cnt = np.bincount(np.searchsorted(edges[1:-1], conf), minlength=bins)
        cnt = cnt[cnt > 0]
        return float(np.sum(cnt / len(conf) * np.abs(pt - pp)))

    conf_hit = {}

    def top():
        pred = p.argmax(axis=1)
        conf_hit["conf"] = p.max(axis=1).astype(np.float64)
        conf_hit["hit"] = (pred == y).astype(int)
        return float(conf_hit["hit"].mean())

    timed("accuracy", top)
    timed("ece_default", lambda: curve_ece(conf_hit["conf"], conf_hit["hit"], "uniform"))
    timed("ece_equal_mass", lambda: curve_ece(conf_hit["conf"], conf_hit["hit"], "quantile"))
    tp, ty = torch.from_numpy(p), torch.from_numpy(y)
    timed("ece_torchmetrics", lambda: float(multiclass_calibration_error(tp, ty, num_classes=k, n_bins=bins, norm="l1")))
    timed("mce_torchmetrics", lambda: float(multiclass_calibration_error(tp, ty, num_classes=k, n_bins=bins, norm="max")))
    timed("rmsce_torchmetrics", lambda: float(multiclass_calibration_error(tp, ty, num_classes=k, n_bins=bins, norm="l2")))
    if n * k * 4 <= 1 << 30:
        timed("ece_netcal", lambda: float(netcal.metrics.ECE(bins=bins).measure(p, y)))

    def blocked(f):
        total = 0.0
        for i in range(0, n, 100_000):
            j = min(n, i + 100_000)
            total += f(y[i:j], p[i:j]) * (j - i)
        return total / n

    labels = list(range(k))
    timed("nll", lambda: blocked(lambda yy, pp: sklearn.metrics.log_loss(yy, pp, labels=labels)))
    timed("brier", lambda: blocked(lambda yy, pp: sklearn.metrics.brier_score_loss(yy, pp, labels=labels, scale_by_half=False)))

    def classwise():
        total = 0.0
        for j in range(k):
            col = np.ascontiguousarray(p[:, j], dtype=np.float64)
            total += curve_ece(col, (y == j).astype(int), "uniform")
        return total / k

    timed("classwise_ece", classwise)

    def aurc():
        order = np.argsort(-conf_hit["conf"], kind="stable")
        err = 1 - conf_hit["hit"][order]
        risks = np.cumsum(err) / np.arange(1, n + 1)
        return float(risks.mean())

    timed("aurc", aurc)
    return load, sum(times.values()), out, times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e6x10,1e6x100,1e6x1000,1e7x10,1e7x100")
    ap.add_argument("--work", default=None, help="where to write the generated data (default: a new temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    args = ap.parse_args()
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="calib-bench-"))
    rows = []
    for s in args.sizes.split(","):
        n, k = parse_size(s)
        d = generate(work, n, k)
        # Ours and Python's in turn (the machine's speed drifts): each Python run beside the
        # median of our runs just before it (run_swift), the ratio taken pair by pair and its median
        # reported; five pairs where Python's run is short, fewer where it takes a minute or more.
        pairs = 5 if n * k <= 10**7 else 3 if n * k <= 10**8 else 1
        sws, pys, ratios, rss = [], [], [], 0.0
        for _ in range(pairs):
            time.sleep(0.5)   # the threads of torch and OpenBLAS in this process spin for a while after work
            sw, r, js = run_swift(d, [])
            load, py, out, times = run_python(d, n, k)
            sws.append(sw); pys.append(py); ratios.append(py / sw); rss = max(rss, r)
        median = lambda v: sorted(v)[len(v) // 2]
        sw, py, ratio = median(sws), median(pys), median(ratios)
        agree = {
            "ece": abs(js["calibration"]["ece"] - out["ece_default"]),
            "ece_tm": abs(js["ece_by_convention"]["torchmetrics"] - out["ece_torchmetrics"]),
            "nll": abs(js["nll"] - out["nll"]),
            "brier": abs(js["brier"] - out["brier"]),
            "classwise": abs(js["classwise_ece"] - out["classwise_ece"]),
            "equal_mass": abs(js["equal_mass_ece"] - out["ece_equal_mass"]),
        }
        if "ece_netcal" in out:
            agree["ece_netcal"] = abs(js["ece_by_convention"]["netcal"] - out["ece_netcal"])
        rows.append((n, k, sw, rss, load, py, ratio, agree, times))
        print(f"{n:>9} x {k:<5} swift {sw:8.2f} s (peak {rss:7.0f} MB)   python {py:8.2f} s "
              f"(+{load:.2f} s load)   python/swift {ratio:6.2f} (median of {pairs} pairs: "
              + ", ".join(f"{x:.1f}" for x in ratios) + ")", flush=True)
        print("    python per metric: " + ", ".join(f"{m} {t:.2f}" for m, t in times.items()), flush=True)
        print("    |swift - python|: " + ", ".join(f"{m} {v:.1e}" for m, v in agree.items()), flush=True)
        bench_result("calib-metrics", f"{n:.0e} x {k} metric set, s (ours wall with reading; peer sklearn+torchmetrics+netcal+numpy compute)",
                     sw, py, ratio)
        if not args.keep:
            for f in d.iterdir():
                f.unlink()
            d.rmdir()
    print("\n        N      K   swift s   peak MB  python s   ratio")
    for n, k, sw, rss, load, py, ratio, _, _ in rows:
        print(f"{n:>9} {k:>6} {sw:9.2f} {rss:9.0f} {py:9.2f} {ratio:7.2f}")


if __name__ == "__main__":
    main()
