#!/bin/sh
# SVE in the paper's own setting (issue 14): every linear layer of the last N transformer layers of
# all-MiniLM-L6-v2 (attention Q, K, V, output; FFN in, out) wrapped as U diag(s_m) Vᵀ + b_m, LayerNorms
# frozen, attention within each text, mean pooling, per-member heads; trained on the hidden states
# entering layer 6−N, which emb-encode --emit writes once (token level, texts cut at 128 tokens).
# BBC News (bundled subset, 349 articles): train on business/entertainment/politics (the bundled
# train/val/test split), near OOD = sport and tech articles (all of them). Single model (SVF, M = 1),
# SVE M = 4, deep ensemble M = 4 (dense copies of the same layers, every weight trainable).
#
#   make release && sh examples/sve/stack.sh
#   LAYERS=1 SEEDS=1 EPOCHS=3 sh examples/sve/stack.sh          # a quick run
#
# Environment: DATA (examples/data), MODEL (models/all-MiniLM-L6-v2, make real-model), BIN
# (.build/release), PY (.venv/bin/python with numpy), OUT (examples/sve/out/stack, ignored by git),
# LAYERS ("1 2": N), SEEDS ("1"), EPOCHS (5), BATCH (8 texts), CONFIGS, THREADS (2), MAXTOK (4096).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DATA=${DATA:-$ROOT/examples/data}
MODEL=${MODEL:-$ROOT/models/all-MiniLM-L6-v2}
BIN=${BIN:-$ROOT/.build/release}
PY=${PY:-$ROOT/.venv/bin/python}
OUT=${OUT:-$HERE/out/stack}
LAYERS=${LAYERS:-"1 2"}
SEEDS=${SEEDS:-1}
EPOCHS=${EPOCHS:-5}
THREADS=${THREADS:-2}
MAXTOK=${MAXTOK:-4096}
BATCH=${BATCH:-8}
CONFIGS=${CONFIGS:-"svf:sve:1 sve4:sve:4 de4:deep-ensemble:4"}
[ -f "$MODEL/model.safetensors" ] || { echo "$0: no model in $MODEL (make real-model)" >&2; exit 66; }
[ -x "$BIN/sve-train" ] || { echo "$0: no built tools in $BIN (make release)" >&2; exit 69; }
command -v "$PY" >/dev/null || { echo "$0: no python at $PY (make venv)" >&2; exit 69; }
PATH="$BIN:$PATH"
mkdir -p "$OUT"

# 1. The texts: in-distribution (classes 0-2, labels and split kept) and OOD (classes 3-4).
"$PY" - "$DATA" "$OUT" <<'PYEOF'
import sys, numpy as np
data, out = sys.argv[1:]
d = np.load(f"{data}/bbc.npz")
texts = open(f"{data}/text/bbc_ffn.txt", encoding="utf-8").read().split("\n")[:len(d["label"])]
ind = d["label"] < 3
open(f"{out}/id.txt", "w", encoding="utf-8").write("".join(t + "\n" for t, k in zip(texts, ind) if k))
open(f"{out}/ood.txt", "w", encoding="utf-8").write("".join(t + "\n" for t, k in zip(texts, ind) if not k))
np.savez(f"{out}/id_meta.npz", labels=d["label"][ind].astype(np.int64), split=d["split"][ind].astype(np.int64))
PYEOF
tensor from npz "$OUT/id_meta.npz" -o "$OUT/id_meta.tsr"
tensor select split -o "$OUT/id_split.tsr" < "$OUT/id_meta.tsr"

# 2. Hidden states entering layers 4 and 5, token level, once.
points=$(for n in $LAYERS; do printf 'layer.%d.input,' $((6 - n)); done)
for set in id ood; do
    [ -s "$OUT/$set.hidden.tsr" ] || emb-encode -q --model "$MODEL" --max-length 128 --threads "$THREADS" \
        --emit "${points%,}" "$OUT/$set.txt" -o "$OUT/$set.hidden.tsr"
done

: > "$OUT/results.jsonl"
for n in $LAYERS; do
    first=$((6 - n))
    # 3. The basis of layers first..5 (every linear layer's SVD; LayerNorms copied).
    tensor from safetensors "$MODEL/model.safetensors" | sve-decompose -q --layers "$first-5" -o "$OUT/basis.$n.tsr"
    for set in id ood; do
        tensor select "layer.$first.input" lengths < "$OUT/$set.hidden.tsr" | tensor rename "layer.$first.input=features" -o "$OUT/$set.$n.tsr"
    done
    tensor cat "$OUT/id.$n.tsr" "$OUT/id_meta.tsr" -o "$OUT/id.$n.train.tsr"  # token rows + per-text labels
    for seed in $SEEDS; do
        for cfg in $CONFIGS; do
            name=${cfg%%:*} rest=${cfg#*:}; method=${rest%%:*} members=${rest#*:}
            start=$(date +%s)
            sve-train "$OUT/id.$n.train.tsr" --basis "$OUT/basis.$n.tsr" --layers "$first-5" --split "$OUT/id_split.tsr" \
                --method "$method" --members "$members" --epochs "$EPOCHS" --batch-size "$BATCH" --seed "$seed" --max-tokens "$MAXTOK" \
                --threads "$THREADS" -o "$OUT/model.$n.$name.$seed.tsr"
            secs=$(( $(date +%s) - start ))
            sve-predict --model "$OUT/model.$n.$name.$seed.tsr" --pass labels --pass split --threads "$THREADS" \
                < "$OUT/id.$n.train.tsr" | tensor to npz -o "$OUT/pred.$n.$name.$seed.id.npz"
            sve-predict --model "$OUT/model.$n.$name.$seed.tsr" --threads "$THREADS" \
                < "$OUT/ood.$n.tsr" | tensor to npz -o "$OUT/pred.$n.$name.$seed.ood.npz"
            "$PY" "$HERE/stack_metrics.py" "$OUT/pred.$n.$name.$seed.id.npz" "$OUT/pred.$n.$name.$seed.ood.npz" \
                --label "N=$n $name seed $seed" --seconds "$secs" --epochs "$EPOCHS" | tee -a "$OUT/results.jsonl"
        done
    done
done
"$PY" "$HERE/stack_metrics.py" --table "$OUT/results.jsonl" | tee "$OUT/table.md"
