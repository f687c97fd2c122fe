#!/usr/bin/env bash
# emb-encode against sentence-transformers (PyTorch, CPU) on the same model, the same texts and the
# same thread count: texts/s of each and the ratio. Both include loading the model; the Python side is
# timed from inside (import time excluded), emb-encode from outside (process start and load included).
# Usage: bash bench/emb-encode.sh [TEXTS.txt]   (default: the Lee corpus sentences, see below)
#   THREADS=1 N=2000 MODEL=models/all-MiniLM-L6-v2 PY=.venv/bin/python
# Needs: make release, make real-model, and in $PY: sentence-transformers, torch (CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
E=.build/release/emb-encode
MODEL=${MODEL:-models/all-MiniLM-L6-v2}
PY=${PY:-.venv/bin/python}
THREADS=${THREADS:-1}
N=${N:-2000}
BATCH=${BATCH:-32}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

if [ $# -ge 1 ]; then head -n "$N" "$1" > "$W/texts.txt"; else
  # Real text: the sentences of gensim's Lee background corpus (pip download, no install).
  "$PY" -m pip download -q --no-deps gensim==4.4.0 -d "$W" >/dev/null
  "$PY" - "$W" "$N" > "$W/texts.txt" <<'PY'
import glob, sys, zipfile
z = zipfile.ZipFile(glob.glob(sys.argv[1] + "/gensim-*.whl")[0])
docs = z.read("gensim/test/test_data/lee_background.cor").decode("latin-1").splitlines()
s = [x.strip() for d in docs for x in d.split(". ") if x.strip()]
print("\n".join(s[: int(sys.argv[2])]))
PY
fi
n=$(wc -l < "$W/texts.txt")
echo "texts: $n lines, $(wc -c < "$W/texts.txt") bytes; model $MODEL; threads $THREADS; batch $BATCH"

start=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$W/cpu" "$E" --model "$MODEL" --threads "$THREADS" --batch-size "$BATCH" "$W/texts.txt" -o "$W/e.tsr"
end=$(date +%s.%N)
t_e=$(echo "$end - $start" | bc -l)
c_e=$(awk '{print $1 + $2}' "$W/cpu")

read -r t_st c_st < <(OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS HF_HUB_OFFLINE=1 "$PY" - "$MODEL" "$W/texts.txt" "$THREADS" "$BATCH" 2>/dev/null <<'PY'
import sys, time
import torch
torch.set_num_threads(int(sys.argv[3]))
from sentence_transformers import SentenceTransformer
t0, c0 = time.perf_counter(), time.process_time()
m = SentenceTransformer(sys.argv[1], device="cpu")
texts = open(sys.argv[2], encoding="utf-8").read().split("\n")[:-1]
m.encode(texts, batch_size=int(sys.argv[4]))
print(time.perf_counter() - t0, time.process_time() - c0)
PY
)
# Wall time is what a user waits; CPU time (all threads) is the steadier figure on a shared machine.
printf "emb-encode:            %7.2f s wall %8.1f texts/s   %7.2f s CPU\n" "$t_e" "$(echo "$n / $t_e" | bc -l)" "$c_e"
printf "sentence-transformers: %7.2f s wall %8.1f texts/s   %7.2f s CPU\n" "$t_st" "$(echo "$n / $t_st" | bc -l)" "$c_st"
printf "ratio (emb-encode / sentence-transformers): %.2f by wall time, %.2f by CPU time\n" \
  "$(echo "$t_st / $t_e" | bc -l)" "$(echo "$c_st / $c_e" | bc -l)"
