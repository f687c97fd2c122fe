#!/bin/sh
# Does an ensemble know what it has not seen? Out-of-distribution detection by SVE's mutual
# information (issue 13), on the real last FFN block of all-MiniLM-L6-v2, as in run.sh.
#
# Train on three BBC classes (business, entertainment, politics); then ask the trained model about
#   - its own test rows of those classes (in distribution: accuracy, ECE, NLL),
#   - the test rows of the two held-out classes (sport, tech): near OOD, same kind of text,
#   - the 200 polarity sentences (movie reviews): far OOD, another kind of text,
# and score how well each uncertainty tells OOD rows from in-distribution ones (AUROC): mutual
# information (epistemic; ensembles only), total entropy, and the trivial baseline 1 − max p.
# Single model (SVF, M = 1), SVE M = 4, deep ensemble M = 4, seeds 1–3.
#
#   make release venv data && sh examples/sve/ood.sh             # part of `make results`
#   DATA=examples/data SEEDS=1 sh examples/sve/ood.sh            # the bundled subset, a minute
#
# Environment: DATA (data/full; examples/data is the bundled subset), BIN (.build/release),
# PY (.venv/bin/python, numpy), OUT (examples/sve/out-ood, ignored by git), SEEDS, EPOCHS (default:
# sve-train's own, at least 10 epochs and 100 steps).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/env.sh"
OUT=${OUT:-$HERE/out-ood}
SEEDS=${SEEDS:-"1 2 3"}
mkdir -p "$OUT"
EPOCHS_OPT=${EPOCHS:+--epochs $EPOCHS}

tensor from safetensors "$DATA/minilm_layer5_ffn.safetensors" | sve-decompose --prefix "$L." -o "$OUT/basis.tsr"

# The three sets as npz (tensor where tests equality only; three classes out of five is a numpy line).
"$PY" - "$DATA" "$OUT" <<'PY'
import sys, numpy as np
data, out = sys.argv[1:]
b = np.load(f"{data}/bbc_ffn.npz"); p = np.load(f"{data}/polarity_ffn.npz")
x, y, s = b["ffn_in"].astype(np.float32), b["label"], b["split"]
ind = y < 3
np.savez(f"{out}/id.npz", features=x[ind], labels=y[ind], split=s[ind])
np.savez(f"{out}/near.npz", features=x[~ind & (s == 2)], labels=y[~ind & (s == 2)])
np.savez(f"{out}/far.npz", features=p["ffn_in"].astype(np.float32), labels=p["label"])
PY
tensor from npz "$OUT/id.npz" -o "$OUT/id.tsr"
tensor where split=2 "$OUT/id.tsr" -o "$OUT/id-test.tsr"
for part in near far; do tensor from npz "$OUT/$part.npz" -o "$OUT/$part.tsr"; done

: > "$OUT/results.jsonl"
for seed in $SEEDS; do
    for cfg in "svf sve 1" "sve4 sve 4" "de4 deep-ensemble 4"; do
        set -- $cfg
        name=$1 method=$2 members=$3
        tensor select features labels --input "$OUT/id.tsr" \
            | sve-train --basis "$OUT/basis.tsr" --stack "$STACK" --split "$OUT/id.tsr" --classes 3 \
                --method "$method" --members "$members" $EPOCHS_OPT --seed "$seed" -o "$OUT/$name.$seed.model.tsr"
        for part in id-test near far; do
            sve-predict "$OUT/$part.tsr" --model "$OUT/$name.$seed.model.tsr" --pass labels \
                | tensor to npz -o "$OUT/$name.$seed.$part.npz"
        done
        "$PY" "$HERE/ood.py" --label "bbc $name $seed" "$OUT/$name.$seed.id-test.npz" \
            "$OUT/$name.$seed.near.npz" "$OUT/$name.$seed.far.npz" >> "$OUT/results.jsonl"
    done
done
"$PY" "$HERE/ood.py" --table "$OUT/results.jsonl" | tee "$OUT/table.md"
