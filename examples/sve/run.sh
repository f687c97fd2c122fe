#!/bin/sh
# Real end to end: singular value ensembles over the real last FFN block of all-MiniLM-L6-v2
# (intermediate.dense 1536×384, GELU, output.dense 384×1536, residual, output.LayerNorm), fed the
# block's real inputs (mean-pooled over each text's tokens), classifying BBC News (5 classes) and
# the 200 polarity sentences (2 classes). Single model (SVF), deep ensembles and SVE with M = 4, 8.
#
#   make release venv data && sh examples/sve/run.sh     # what `make results` runs
#   DATA=examples/data EPOCHS=1 SEEDS=1 sh examples/sve/run.sh   # a quick run on the bundled subset
#
# Environment (defaults inside the project): DATA (data/full, made by `make data`; examples/data
# is the small bundled copy), BIN (.build/release), PY (.venv/bin/python, with numpy: metrics.py;
# `make venv`), OUT (examples/sve/out, ignored by git), EPOCHS, SEEDS, SETS.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/env.sh"
OUT=${OUT:-$HERE/out}
EPOCHS=${EPOCHS:-10}
SEEDS=${SEEDS:-"1 2 3"}
SETS=${SETS:-"bbc polarity"}
mkdir -p "$OUT"

# 1. The shared basis: thin SVD of the two pretrained matrices; the LayerNorm is copied along.
tensor from safetensors "$DATA/minilm_layer5_ffn.safetensors" | sve-decompose --prefix "$L." -o "$OUT/basis.tsr"

# 2. The data as streams: features (the block's inputs) + labels, and the train/val/test split.
for set in $SETS; do
    tensor from npz "$DATA/${set}_ffn.npz" | tensor rename ffn_in=features label=labels \
        | tensor select features labels -o "$OUT/$set.tsr"
    if [ "$set" = polarity ]; then
        # polarity_ffn.npz has no split: a fixed stratified one, 60/20/20 (per class, every 5th row
        # to test, the next to validation).
        "$PY" -c "
import numpy as np, sys
y = np.load('$DATA/polarity_ffn.npz')['label']; s = np.zeros(len(y), np.int64)
for c in np.unique(y):
    i = np.flatnonzero(y == c); s[i[0::5]] = 2; s[i[1::5]] = 1
np.save('$OUT/polarity_split.npy', s)"
        tensor from npy "$OUT/polarity_split.npy" --name split -o "$OUT/polarity_split.tsr"
    else
        tensor from npz "$DATA/${set}_ffn.npz" | tensor select split -o "$OUT/${set}_split.tsr"
    fi
done

# 3. Train, predict every row (labels and split passed along), score the test split.
: > "$OUT/results.jsonl"
for set in $SETS; do
    for seed in $SEEDS; do
        for cfg in "svf sve 1" "sve4 sve 4" "sve8 sve 8" "de4 deep-ensemble 4" "de8 deep-ensemble 8"; do
            set -- $cfg
            name=$1 method=$2 members=$3
            sve-train "$OUT/$set.tsr" --basis "$OUT/basis.tsr" --stack "$STACK" --split "$OUT/${set}_split.tsr" \
                --method "$method" --members "$members" --epochs "$EPOCHS" --seed "$seed" -o "$OUT/$set.$name.$seed.model.tsr"
            tensor paste "$OUT/$set.tsr" "$OUT/${set}_split.tsr" \
                | sve-predict --model "$OUT/$set.$name.$seed.model.tsr" --pass labels --pass split \
                | tensor to npz -o "$OUT/$set.$name.$seed.pred.npz"
            "$PY" "$HERE/metrics.py" "$OUT/$set.$name.$seed.pred.npz" --json --label "$set $name $seed" >> "$OUT/results.jsonl"
            "$PY" "$HERE/metrics.py" "$OUT/$set.$name.$seed.pred.npz" --label "$set $name seed $seed" >&2
        done
    done
done
# The table (also in OUT/table.md, which `make results` puts into RESULTS.md).
"$PY" "$HERE/table.py" "$OUT/results.jsonl" | tee "$OUT/table.md"
