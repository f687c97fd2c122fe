#!/usr/bin/env bash
# Every benchmark in sequence, each printing its table (`make bench`, which first builds the release
# programs, the project's .venv with requirements/bench.txt, and installs hyperfine and GNU time).
#   bash bench/all.sh                  the benchmarks at their documented sizes (an hour or more)
#   BENCH_QUICK=1 bash bench/all.sh    every benchmark at a small size: checks that they run
# Data: data/full when `make data` has made it, else the bundled examples/data.
set -euo pipefail
cd "$(dirname "$0")/.."
export PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || { echo "bench: no python at $PY (make venv-bench)" >&2; exit 69; }
[ -x .build/release/tensor ] || { echo "bench: no release build (make release)" >&2; exit 69; }
run() {
    printf '\n== %s\n' "$*"
    "$@"
}
if [ -n "${BENCH_QUICK:-}" ]; then
    CODEC_MB=8 CODEC_RUNS=2 run bash bench/codec.sh
    run bash bench/scale.sh 0.25
    run bench/emb-sim.sh --corpus-rows 5000 --queries 200
    run bench/emb-laplace.sh --pairs 256
    run "$PY" bench/sve.py --epochs 2 --members 2 --skip-einsum
    run "$PY" bench/calib-metrics.py --sizes 1e4x10
else
    run bash bench/codec.sh
    run bash bench/scale.sh
    run bench/emb-sim.sh
    run bench/emb-laplace.sh
    run "$PY" bench/sve.py --members 4
    run "$PY" bench/sve.py --members 8
    run "$PY" bench/calib-metrics.py
fi
