#!/usr/bin/env bash
# Peak memory against input size for the streaming programs (issue: bounded memory).
#   bash bench/scale.sh [GB...]      default: 0.5 2 4
# Builds a stream of real-looking float32 rows of the given size (concatenated segments of a
# 256 MB stream), runs each program on it under /usr/bin/time, and prints peak RSS.
# PY (default .venv/bin/python, `make venv`) needs numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
B=.build/release
PY=${PY:-.venv/bin/python}
W=${SCALE_DIR:-$(mktemp -d)}
trap '[ -z "${SCALE_DIR:-}" ] && rm -rf "$W"' EXIT
SIZES=${*:-0.5 2 4}
"$PY" - "$W" <<'PY'
import numpy as np, sys
rng = np.random.default_rng(0)
x = rng.standard_normal((174_763, 384)).astype(np.float32) * 0.05   # 256 MB
np.save(sys.argv[1] + "/block.npy", x)
PY
$B/tensor from npy "$W/block.npy" --name embedding --level 1 > "$W/block.tsr"
make -s -C examples >/dev/null
cp examples/work/post-minilm.tsr "$W/post.tsr"
cp examples/work/body-minilm.tsr "$W/corpus.tsr"
L=encoder.layer.5
$B/tensor from safetensors examples/data/minilm_layer5_ffn.safetensors | $B/sve-decompose -q --prefix $L. -o "$W/basis.tsr"
$B/tensor from npz examples/data/bbc_ffn.npz | $B/tensor select ffn_in label | $B/tensor rename ffn_in=features label=labels \
  | $B/sve-train --basis "$W/basis.tsr" --members 4 --epochs 1 -o "$W/model.tsr" \
    --stack "residual(linear:$L.intermediate.dense gelu linear:$L.output.dense) layernorm:$L.output.LayerNorm"
peak() {  # peak RSS in MB of a command line run by bash ("failed (exit N)" when it fails)
  local status=0
  /usr/bin/time -f "%M" -o "$W/rss" bash -c "$1" >/dev/null || status=$?
  if [ "$status" -ne 0 ]; then echo "failed (exit $status)"; return; fi
  echo $(( $(tail -n 1 "$W/rss") / 1024 ))
}
printf "%-8s %-40s %10s\n" "input" "program" "peak RSS MB"
for gb in $SIZES; do
  n=$("$PY" -c "print(max(1, round($gb * 4)))")
  files=$(for i in $(seq $n); do printf '%s ' "$W/block.tsr"; done)
  printf "%-8s %-40s %10s\n" "${gb}GB" "cat (shell) | tensor info" "$(peak "cat $files | $B/tensor info")"
  printf "%-8s %-40s %10s\n" "${gb}GB" "cat (shell) | tensor cat" "$(peak "cat $files | $B/tensor cat --level 1")"
  printf "%-8s %-40s %10s\n" "${gb}GB" "cat (shell) | tensor cat (records copied)" "$(peak "cat $files | $B/tensor cat")"
  printf "%-8s %-40s %10s\n" "${gb}GB" "cat (shell) | tensor slice" "$(peak "cat $files | $B/tensor slice --start 1000 --level 1")"
  # Conversions out: the rows wait in a temporary file (TMPDIR), not in memory.
  printf "%-8s %-40s %10s\n" "${gb}GB" "cat (shell) | tensor to npy" "$(TMPDIR=$W peak "cat $files | $B/tensor to npy")"
  printf "%-8s %-40s %10s\n" "${gb}GB" "cat (shell) | tensor to npz" "$(TMPDIR=$W peak "cat $files | $B/tensor to npz")"
  # The computing programs, on the same rows (384-dim 'embedding'), with side inputs from the
  # bundled example workflow (make -C examples) and a small SVE model trained here.
  printf "%-8s %-40s %10s\n" "${gb}GB" "emb-laplace apply" "$(peak "cat $files | $B/emb-laplace apply --posterior $W/post.tsr --level 1")"
  printf "%-8s %-40s %10s\n" "${gb}GB" "emb-laplace apply (records copied)" "$(peak "cat $files | $B/emb-laplace apply --posterior $W/post.tsr")"
  printf "%-8s %-40s %10s\n" "${gb}GB" "emb-sim --top-k 10 (corpus 70 rows)" "$(peak "cat $files | $B/emb-sim --corpus $W/corpus.tsr --top-k 10 --level 1")"
  printf "%-8s %-40s %10s\n" "${gb}GB" "sve-predict (M = 4)" "$(peak "cat $files | $B/tensor rename embedding=features | $B/sve-predict --model $W/model.tsr --level 1")"
done
# emb-encode: peak memory against the number of lines (the same real sentences repeated), when the
# model is installed (make real-model). ENCODE_LINES="1000 10000" by default.
if [ -f models/all-MiniLM-L6-v2/model.safetensors ]; then
  python3 - "$W/texts.txt" <<'PY'
import sys
words = open("README.md", encoding="utf-8").read().split()
with open(sys.argv[1], "w") as f:
    for i in range(0, len(words) - 40, 7):
        f.write(" ".join(words[i:i + 5 + i % 35]) + "\n")
PY
  for n in ${ENCODE_LINES:-1000 10000}; do
    while [ "$(wc -l < "$W/texts.txt")" -lt "$n" ]; do cat "$W/texts.txt" "$W/texts.txt" > "$W/t2" && mv "$W/t2" "$W/texts.txt"; done
    head -n "$n" "$W/texts.txt" > "$W/lines.txt"
    printf "%-8s %-40s %10s\n" "${n}l" "emb-encode (all-MiniLM-L6-v2)" "$(peak "$B/emb-encode --model models/all-MiniLM-L6-v2 --level 1 $W/lines.txt")"
  done
fi
