#!/usr/bin/env bash
# Every benchmark in sequence, each printing its table (`make bench`, which first builds the release
# programs, the project's .venv with requirements/bench.txt, and installs hyperfine and GNU time),
# then ONE summary table: tool, what, this project, peer, ratio (peer / ours: above 1, this project
# is faster), with the machine's limits measured on the spot (sgemm/dgemm GFLOP/s, memory
# bandwidth), the BLAS core the programs run and the load average.
#   bash bench/all.sh                  the benchmarks at their documented sizes (an hour or more)
#   BENCH_QUICK=1 bash bench/all.sh    every benchmark at a small size: checks that they run
# Data: data/full when `make data` has made it, else the bundled examples/data.
# A benchmark feeds the summary by appending RESULT<TAB>tool<TAB>what<TAB>ours<TAB>peer<TAB>ratio
# lines to the file named by $BENCH_SUMMARY: bench_result in bench/summary.sh (shell) or
# bench/summary.py (Python) does it. BENCH_SUMMARY=FILE keeps the lines (default: a temporary file).
set -euo pipefail
cd "$(dirname "$0")/.."
export PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || { echo "bench: no python at $PY (make venv-bench)" >&2; exit 69; }
[ -x .build/release/tensor ] || { echo "bench: no release build (make release)" >&2; exit 69; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export BENCH_SUMMARY=${BENCH_SUMMARY:-$W/summary.tsv}
: >> "$BENCH_SUMMARY"
failed=()
run() {
    printf '\n== %s\n' "$*"
    "$@" || { echo "bench: failed: $*" >&2; failed+=("$*"); }
}

# The limits first, while the machine is as quiet as it will be.
"$PY" bench/machine.py > "$W/machine.tsv" || echo "MACHINE	limits	not measured (bench/machine.py failed)" > "$W/machine.tsv"
# What fresh memory costs to touch, on small and huge pages, warm and after a pause (bench/first-touch.c):
# the programs' first-run costs depend on it, and on some VMs huge pages after a pause cost far more.
{ cc -O2 bench/first-touch.c -o "$W/first-touch" && "$W/first-touch" "$([ -n "${BENCH_QUICK:-}" ] && echo 16 || echo 64)" 3; } >> "$W/machine.tsv" \
    || echo "MACHINE	first touch	not measured (bench/first-touch.c failed)" >> "$W/machine.tsv"
# The BLAS core the programs run (what -v reports, after the automatic choice of kernel).
.build/release/tensor from npz examples/data/leebg.npz | .build/release/tensor select query_minilm positive_minilm \
  | .build/release/tensor rename query_minilm=query positive_minilm=positive \
  | .build/release/emb-laplace fit -v -o "$W/post.tsr" 2> "$W/blas.txt" >/dev/null || true
printf 'MACHINE\tBLAS of the programs\t%s\n' "$(grep -m1 '^BLAS:' "$W/blas.txt" | sed 's/^BLAS: //' || echo '?')" >> "$W/machine.tsv"
printf 'MACHINE\tCPU\t%s (%s cores)\n' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(nproc)" >> "$W/machine.tsv"

if [ -n "${BENCH_QUICK:-}" ]; then
    RUNS=5 run bash bench/startup.sh
    CODEC_MB=8 CODEC_RUNS=2 run bash bench/codec.sh
    run bash bench/scale.sh 0.25
    run bench/emb-sim.sh --corpus-rows 5000 --queries 200
    run bench/emb-laplace.sh --pairs 256
    run "$PY" bench/uec-stream.py --rows 5000 --runs 1
    run "$PY" bench/sve.py --epochs 2 --members 2 --skip-einsum --runs 1
    run "$PY" bench/calib-metrics.py --sizes 1e4x10
else
    run bash bench/startup.sh
    run bash bench/codec.sh
    run bash bench/scale.sh
    run bench/emb-sim.sh
    run bench/emb-laplace.sh
    run "$PY" bench/uec-stream.py
    run "$PY" bench/sve.py --members 4 --threads 2 --batch 16,256 --rows 16000 --epochs 3 --skip-einsum
    run "$PY" bench/sve.py --members 8 --threads 2 --batch 16,256 --rows 16000 --epochs 3 --skip-einsum
    run "$PY" bench/calib-metrics.py
fi
"$PY" - "$W/machine.tsv" "$BENCH_SUMMARY" "${BENCH_QUICK:+quick sizes: a check that the benchmarks run, not a measurement}" <<'PY'
import sys
machine = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.startswith("MACHINE\t")]
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if l.startswith("RESULT\t")]
print("\n== summary" + (f" ({sys.argv[3]})" if sys.argv[3] else ""))
for m in machine:
    print(f"  {m[1]}: {m[2]}")
head = ["tool", "what", "this project", "peer", "ratio"]
body = [r[1:6] + [""] * (6 - len(r)) for r in rows]
w = [max(len(x[i]) for x in [head] + body) for i in range(5)]
line = lambda x: "| " + " | ".join(x[i].ljust(w[i]) if i < 2 else x[i].rjust(w[i]) for i in range(5)) + " |"
print(line(head))
print("|" + "|".join("-" * (w[i] + 2) if i < 2 else "-" * (w[i] + 1) + ":" for i in range(5)) + "|")
for r in body:
    print(line(r))
print("ratio = peer / this project (lower-is-better figures): above 1, this project is faster.")
PY
if [ ${#failed[@]} -gt 0 ]; then
    echo "bench: ${#failed[@]} benchmark(s) failed: ${failed[*]}" >&2
    exit 1
fi
