#!/bin/sh
# After run.sh: re-fuse and re-score UEC for several fusion temperatures T and penalties β,
# reusing the probabilistic embeddings run.sh left in WORK (fusion and scoring are cheap).
#
#   TS="1 0.01 0.003 0.001" BETAS="0 1 100" examples/uec/sweep.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
DATA=${DATA:?set DATA to the directory scripts/make-data.py --out wrote}
WORK=${WORK:-/tmp/uec-example}
BIN=${BIN:-$here/../../.build/debug}
PY=${PY:-python3}
MODELS=${MODELS:-"minilm paraphrase e5"}
TS=${TS:-"1 0.01 0.003 0.001"}
BETAS=${BETAS:-"0 1 10 100"}
export PATH="$BIN:$PATH"
cd "$WORK"
names=""
for t in $TS; do
    for set in lee title body; do
        files=""
        for m in $MODELS; do files="$files ${m}_${set}.tsr"; done
        emb-fuse --temperature "$t" $files -o "sweep_${set}.tsr"
    done
    tensor to npy --tensor weights sweep_title.tsr -o "scores/w_T$t.npy"
    "$PY" -c "import numpy as np; w=np.load('scores/w_T$t.npy'); print('T=$t mean weights', w.mean(0).round(3), 'row std', w.std(0).round(3))"
    for b in $BETAS; do
        name="uec(T=$t,beta=$b)"
        emb-sim --matrix --beta "$b" sweep_lee.tsr | tensor to npy -o "scores/${name}_lee.npy"
        emb-sim --corpus sweep_body.tsr --top-k 10 --beta "$b" sweep_title.tsr |
            tensor to npy --tensor indices -o "scores/${name}_bbc.npy"
        names="$names $name"
    done
done
"$PY" "$here/metrics.py" "$DATA/lee_pairs.npz" scores $names
