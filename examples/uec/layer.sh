#!/bin/sh
# The real-last-layer posterior on real activations (see layer.py): fit on same-class article
# pairs of the BBC train split, variance scale on the validation split, apply to the test split,
# then ask whether the per-article variance says anything the embedding's norm does not.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
DATA=${DATA:?set DATA to the directory scripts/make-data.py --out wrote}
WORK=${WORK:-/tmp/uec-layer}
BIN=${BIN:-$here/../../.build/debug}
PY=${PY:-python3}
TAU=${TAU:-1}
export PATH="$BIN:$PATH"
"$PY" "$here/layer.py" prepare "$DATA" "$WORK"
cd "$WORK"
tensor from safetensors "$DATA/minilm_layer5_ffn.safetensors" -o ffn.tsr
tensor from npz layer_train.npz -o layer_train.tsr
tensor from npz layer_val.npz -o layer_val.tsr
emb-laplace fit -v --layer ffn.tsr --weight-name encoder.layer.5.output.dense.weight \
    --bias-name encoder.layer.5.output.dense.bias --temperature "$TAU" --heldout layer_val.tsr \
    layer_train.tsr -o layer_post.tsr
for s in test train; do
    tensor from npy "layer_$s.npy" --name embedding |
        emb-laplace apply --posterior layer_post.tsr --normalize delta -o "layer_$s.tsr"
    tensor to npy --tensor mean "layer_$s.tsr" -o "layer_${s}_mean.npy"
done
tensor to npy --tensor var layer_test.tsr -o layer_test_var.npy
tensor from npy layer_test.npy --name embedding | emb-laplace apply --posterior layer_post.tsr |
    tensor to npy --tensor mean -o layer_test_raw_mean.npy
"$PY" "$here/layer.py" diagnose "$DATA" "$WORK"
