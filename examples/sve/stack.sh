#!/bin/sh
# SVE in the paper's own setting (issue 14): every linear layer of the last N transformer layers of
# all-MiniLM-L6-v2 (attention Q, K, V, output; FFN in, out) wrapped as U diag(s_m) Vᵀ + b_m, LayerNorms
# frozen, attention within each text, mean pooling, per-member heads; trained on the hidden states
# entering layer 6−N, which emb-encode --emit writes once (token level, texts cut at 128 tokens).
# Single model (SVF, M = 1), SVE M = 4, deep ensemble M = 4 (dense copies of the same layers, every
# weight trainable), for each N and seed (seeds outermost, so a cut-short run has whole seeds).
#
# Tasks:
#   bbc       train on business/entertainment/politics with the data's train/validation/test split;
#             near OOD = every sport and tech article; far OOD = the 200 polarity sentences.
#   polarity  the 200 sentences, 2 classes, the fixed 120/40/40 split (scripts/make-data.py).
# Data: the full BBC (2225 articles) and polarity texts when `make data-text` has written
# data/text/, else the bundled BBC subset (349 articles; no polarity texts: task bbc, near
# OOD only).
#
#   make release real-model data-text && sh examples/sve/stack.sh
#   LAYERS=1 SEEDS=1 EPOCHS=1 sh examples/sve/stack.sh          # a quick run
#
# Environment: DATA (data, if `make data-text` wrote data/text/bbc.txt, else examples/data), MODEL
# (models/all-MiniLM-L6-v2, make real-model), BIN (.build/release), PY (.venv/bin/python with numpy),
# OUT (examples/sve/out/stack, ignored by git), LAYERS ("1 2": N), SEEDS ("1 2 3"), EPOCHS (3),
# POLARITY_EPOCHS (10), BATCH (8 texts), CONFIGS, TASKS ("bbc polarity"), THREADS (2), MAXTOK (4096).
# A run already in OUT/results.jsonl is not run again (delete the file to start over).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [ -z "${DATA:-}" ]; then
    if [ -s "$ROOT/data/text/bbc.txt" ]; then DATA=$ROOT/data; else DATA=$ROOT/examples/data; fi
fi
MODEL=${MODEL:-$ROOT/models/all-MiniLM-L6-v2}
BIN=${BIN:-$ROOT/.build/release}
PY=${PY:-$ROOT/.venv/bin/python}
OUT=${OUT:-$HERE/out/stack}
LAYERS=${LAYERS:-"1 2"}
SEEDS=${SEEDS:-"1 2 3"}
EPOCHS=${EPOCHS:-3}
POLARITY_EPOCHS=${POLARITY_EPOCHS:-10}
THREADS=${THREADS:-2}
MAXTOK=${MAXTOK:-4096}
BATCH=${BATCH:-8}
TASKS=${TASKS:-"bbc polarity"}
CONFIGS=${CONFIGS:-"svf:sve:1 sve4:sve:4 de4:deep-ensemble:4"}
[ -f "$MODEL/model.safetensors" ] || { echo "$0: no model in $MODEL (make real-model)" >&2; exit 66; }
[ -x "$BIN/sve-train" ] || { echo "$0: no built tools in $BIN (make release)" >&2; exit 69; }
command -v "$PY" >/dev/null || { echo "$0: no python at $PY (make venv)" >&2; exit 69; }
PATH="$BIN:$PATH"
mkdir -p "$OUT"

# 1. The texts: in-distribution (BBC classes 0-2, labels and split kept), near OOD (classes 3-4),
#    and when present the polarity sentences (far OOD, and the polarity task).
"$PY" - "$DATA" "$OUT" <<'PYEOF'
import os, sys, numpy as np
data, out = sys.argv[1:]
def lines(path, n=None):
    t = open(path, encoding="utf-8").read().split("\n")
    return t[:n] if n is not None else [l for l in t if l]
if os.path.exists(f"{data}/text/bbc.txt"):   # make data-text: the full texts
    d = np.load(f"{data}/text/bbc.npz"); texts = lines(f"{data}/text/bbc.txt")
else:                                          # the bundled subset
    d = np.load(f"{data}/bbc.npz"); texts = lines(f"{data}/text/bbc_ffn.txt", len(d["label"]))
assert len(texts) == len(d["label"]), (len(texts), len(d["label"]))
ind = d["label"] < 3
open(f"{out}/id.txt", "w", encoding="utf-8").write("".join(t + "\n" for t, k in zip(texts, ind) if k))
open(f"{out}/near.txt", "w", encoding="utf-8").write("".join(t + "\n" for t, k in zip(texts, ind) if not k))
np.savez(f"{out}/id_meta.npz", labels=d["label"][ind].astype(np.int64), split=d["split"][ind].astype(np.int64))
if os.path.exists(f"{data}/text/polarity.txt"):
    p = np.load(f"{data}/text/polarity.npz"); ptexts = lines(f"{data}/text/polarity.txt")
    assert len(ptexts) == len(p["label"])
    open(f"{out}/far.txt", "w", encoding="utf-8").write("".join(t + "\n" for t in ptexts))
    np.savez(f"{out}/far_meta.npz", labels=p["label"].astype(np.int64), split=p["split"].astype(np.int64))
elif os.path.exists(f"{out}/far.txt"):
    os.remove(f"{out}/far.txt")
print(f"stack: {int(ind.sum())} in-distribution texts (split {np.bincount(d['split'][ind]).tolist()}), "
      f"{int((~ind).sum())} near OOD" + (f", {len(ptexts)} polarity" if os.path.exists(f"{out}/far.txt") else ", no polarity texts"),
      file=sys.stderr)
PYEOF
sets="id near"
[ -f "$OUT/far.txt" ] && sets="$sets far"
for set in id far; do
    [ -f "$OUT/${set}_meta.npz" ] || continue
    tensor from npz "$OUT/${set}_meta.npz" -o "$OUT/${set}_meta.tsr"
    tensor select split -o "$OUT/${set}_split.tsr" < "$OUT/${set}_meta.tsr"
done

# 2. Hidden states entering layers 6 − N, token level, once per set (kept while they hold every
#    point asked for: a later run with fewer LAYERS does not encode again).
points=$(for n in $LAYERS; do printf 'layer.%d.input,' $((6 - n)); done)
for set in $sets; do
    have=",$(cat "$OUT/$set.points" 2>/dev/null || true)"
    missing=$(for p in $(echo "$points" | tr ',' ' '); do case "$have" in *",$p,"*) ;; *) echo "$p" ;; esac; done)
    [ -s "$OUT/$set.hidden.tsr" ] && [ -z "$missing" ] && continue
    emb-encode -q --model "$MODEL" --max-length 128 --threads "$THREADS" \
        --emit "${points%,}" "$OUT/$set.txt" -o "$OUT/$set.hidden.tsr"
    echo "$points" > "$OUT/$set.points"
done

# 3. Per N: the basis of layers 6−N..5 (every linear layer's SVD; LayerNorms copied) and the inputs.
for n in $LAYERS; do
    first=$((6 - n))
    tensor from safetensors "$MODEL/model.safetensors" | sve-decompose -q --layers "$first-5" -o "$OUT/basis.$n.tsr"
    for set in $sets; do
        tensor select "layer.$first.input" lengths < "$OUT/$set.hidden.tsr" | tensor rename "layer.$first.input=features" -o "$OUT/$set.$n.tsr"
    done
    tensor cat "$OUT/id.$n.tsr" "$OUT/id_meta.tsr" -o "$OUT/id.$n.train.tsr"  # token rows + per-text labels
    [ -f "$OUT/far_meta.tsr" ] && tensor cat "$OUT/far.$n.tsr" "$OUT/far_meta.tsr" -o "$OUT/far.$n.train.tsr"
done

# 4. Train, predict, score.
touch "$OUT/results.jsonl"
for seed in $SEEDS; do
    for n in $LAYERS; do
        first=$((6 - n))
        for task in $TASKS; do
            case $task in
                bbc) train=id epochs=$EPOCHS ;;
                polarity) [ -f "$OUT/far.$n.train.tsr" ] || continue; train=far epochs=$POLARITY_EPOCHS ;;
                *) echo "$0: unknown task $task (bbc, polarity)" >&2; exit 64 ;;
            esac
            for cfg in $CONFIGS; do
                name=${cfg%%:*} rest=${cfg#*:}; method=${rest%%:*} members=${rest#*:}
                run="$task.$n.$name.$seed"
                grep -q "\"run\": \"$run\"" "$OUT/results.jsonl" && continue
                start=$(date +%s)
                sve-train "$OUT/$train.$n.train.tsr" --basis "$OUT/basis.$n.tsr" --layers "$first-5" \
                    --split "$OUT/${train}_split.tsr" --method "$method" --members "$members" --epochs "$epochs" \
                    --batch-size "$BATCH" --seed "$seed" --max-tokens "$MAXTOK" --threads "$THREADS" -o "$OUT/model.$run.tsr"
                secs=$(( $(date +%s) - start ))
                sve-predict --model "$OUT/model.$run.tsr" --pass labels --pass split --threads "$THREADS" \
                    < "$OUT/$train.$n.train.tsr" | tensor to npz -o "$OUT/pred.$run.id.npz"
                oods=""
                if [ "$task" = bbc ]; then
                    for set in near far; do
                        case " $sets " in *" $set "*) ;; *) continue ;; esac
                        sve-predict --model "$OUT/model.$run.tsr" --threads "$THREADS" \
                            < "$OUT/$set.$n.tsr" | tensor to npz -o "$OUT/pred.$run.$set.npz"
                        oods="$oods --ood $set=$OUT/pred.$run.$set.npz"
                    done
                fi
                # shellcheck disable=SC2086
                "$PY" "$HERE/stack_metrics.py" "$OUT/pred.$run.id.npz" $oods --task "$task" --n "$n" \
                    --method "$name" --seed "$seed" --seconds "$secs" --epochs "$epochs" \
                    | sed "s/^{/{\"run\": \"$run\", /" | tee -a "$OUT/results.jsonl"
            done
        done
    done
done
"$PY" "$HERE/stack_metrics.py" --table "$OUT/results.jsonl" | tee "$OUT/table.md"
