#!/bin/sh
# UEC end to end on real embeddings: fit a Laplace posterior per model on real positive pairs,
# make the evaluation embeddings probabilistic, fuse the models, and score Lee document
# similarity (Spearman) and BBC title -> body retrieval (nDCG@10, Recall@10).
#
#   examples/uec/run.sh                      # defaults below
#   TAU=0.05 BETA=1 T=0.1 examples/uec/run.sh
#
# Environment: DATA (the embeddings, shared/data.md), WORK (scratch), BIN (built tools),
# PY (a python with numpy+scipy, only for splitting the npz files and for the metrics),
# MODELS, TAU (InfoNCE temperature), BATCH, BETA (uncertainty penalty), T (fusion temperature),
# PREC (prior precision; empty = fitted by MacKay), TAU_<model> (per-model τ).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
DATA=${DATA:?set DATA to the directory scripts/make-data.py --out wrote}
WORK=${WORK:-/tmp/uec-example}
BIN=${BIN:-$here/../../.build/debug}
PY=${PY:-python3}
MODELS=${MODELS:-"minilm paraphrase e5"}
TAU=${TAU:-1}
BATCH=${BATCH:-32}
BETA=${BETA:-1}
T=${T:-1}
PREC=${PREC:-}
export PATH="$BIN:$PATH"

mkdir -p "$WORK/scores"
"$PY" "$here/prepare.py" "$DATA" "$WORK" $MODELS
cd "$WORK"
prior=""
[ -n "$PREC" ] && prior="--prior-precision $PREC"

for m in $MODELS; do
    tensor from npz "${m}_train.npz" -o "${m}_train.tsr"
    tensor from npz "${m}_val.npz" -o "${m}_val.tsr"
    # The posterior: identity adapter, in-batch InfoNCE, variance scale fitted on the val pairs.
    # TAU_<model> overrides TAU for one model (e5's embeddings are unit vectors, the others are not).
    tau=$(eval echo "\${TAU_$m:-$TAU}")
    emb-laplace fit -v --temperature "$tau" --batch-size "$BATCH" $prior --heldout "${m}_val.tsr" \
        "${m}_train.tsr" -o "${m}_post.tsr"
    for set in lee title body; do
        tensor from npy "${m}_${set}.npy" --name embedding --meta model="$m" |
            emb-laplace apply --posterior "${m}_post.tsr" --normalize delta -o "${m}_${set}.tsr"
    done
done

for set in lee title body; do
    files=""
    for m in $MODELS; do files="$files ${m}_${set}.tsr"; done
    emb-fuse --weights uniform $files -o "avg_${set}.tsr"
    emb-fuse --weights uncertainty --temperature "$T" $files -o "uec_${set}.tsr"
done

# name  input-prefix  beta
score() {
    emb-sim --matrix --beta "$3" "$2_lee.tsr" | tensor to npy -o "scores/$1_lee.npy"
    emb-sim --corpus "$2_body.tsr" --top-k 10 --beta "$3" "$2_title.tsr" |
        tensor to npy --tensor indices -o "scores/$1_bbc.npy"
}
names=""
for m in $MODELS; do
    score "$m" "$m" 0;              names="$names $m"
    score "$m+beta" "$m" "$BETA";   names="$names $m+beta"
done
score average avg 0;                names="$names average"
score uec-fused-cosine uec 0;       names="$names uec-fused-cosine"
score uec uec "$BETA";              names="$names uec"

# Mean fusion weights per model on the BBC titles (which model UEC trusted).
tensor to npy --tensor weights uec_title.tsr -o scores/uec_title_weights.npy
"$PY" -c "import numpy as np; w=np.load('scores/uec_title_weights.npy'); print('mean UEC weights ($MODELS):', w.mean(0).round(3), 'min', w.min(0).round(3), 'max', w.max(0).round(3))"
for m in $MODELS; do
    for t in mean var; do tensor to npy --tensor $t "${m}_title.tsr" -o "${m}_title_$t.npy"; done
    tensor to npy --tensor mean "${m}_body.tsr" -o "${m}_body_mean.npy"
done
"$PY" "$here/diagnose.py" . $MODELS
"$PY" "$here/metrics.py" "$DATA/lee_pairs.npz" scores $names
