#!/usr/bin/env python3
"""The machine's limits, measured on the spot for `make bench`'s summary: sgemm and dgemm
GFLOP/s (numpy's BLAS, square 2048 products, best of 5, all cores) and memory bandwidth (a
512 MB copy: bytes read + written per second, best of 5), with the load average. One line each,
`MACHINE<TAB>name<TAB>value`, to standard output."""
import os
import time

import numpy as np


def best(f, n=5):
    t = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - t0)
    return t


def main():
    quick = bool(os.environ.get("BENCH_QUICK"))
    size = 1024 if quick else 2048
    for dtype, name in ((np.float32, "sgemm GFLOP/s"), (np.float64, "dgemm GFLOP/s")):
        a = np.random.default_rng(0).standard_normal((size, size)).astype(dtype)
        b = a.T.copy()
        a @ b
        t = best(lambda: a @ b)
        print(f"MACHINE\t{name}\t{2 * size ** 3 / t / 1e9:.1f}")
    mb = 64 if quick else 512
    src = np.ones(mb << 18, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    t = best(lambda: np.copyto(dst, src))
    print(f"MACHINE\tmemory GB/s (copy, read + write)\t{2 * src.nbytes / t / 1e9:.1f}")
    cfg = np.show_config(mode="dicts") if "mode" in np.show_config.__code__.co_varnames else None
    if cfg:
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        print(f"MACHINE\tnumpy BLAS\t{blas.get('name', '?')} {blas.get('version', '')}")
    print(f"MACHINE\tload average (1, 5, 15 min)\t{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
