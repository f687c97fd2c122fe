#!/usr/bin/env bash
# Does the uncertainty mean anything here? (issue 13.) The confidence audit on the bundled real
# data, with nothing but the toolbox's programs:
#
#   BBC retrieval, per model (all-MiniLM-L6-v2, paraphrase-MiniLM-L3-v2, multilingual-e5-small):
#     the validation + test titles (140) retrieve their article among the same 140 bodies, with
#     UEC's probabilistic embeddings (posterior fitted as in the demo) and the uncertainty-aware
#     similarity. Which signal predicts a missed top hit: the query's posterior trace, the σ of
#     the top score, or the plain score margin (top-1 minus top-2)?
#   SVE classification (BBC, 5 classes, the real last FFN block): does predictive entropy or
#     mutual information predict the errors better than the max probability?
#
#   bash examples/audit.sh            (BIN=.build/debug to use a debug build; SEED, BOOT)
#
# AUDIT_TABLE=FILE also writes the two tables of the README (`make results` splices them in).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}
export PATH="$PWD/$BIN:$PATH"
D=examples/data
W=${AUDIT_DIR:-$(mktemp -d)}
[ -n "${AUDIT_DIR:-}" ] || trap 'rm -rf "$W"' EXIT
mkdir -p "$W"
SEED=${SEED:-1}
: > "$W/sve-table.txt"
BOOT=${BOOT:-1000}
MODELS="minilm paraphrase e5"

# The audit's lines of calib-metrics' table: "NAME (uncertainty|confidence|baseline)  auroc [ci] ...",
# and the paired difference, named after the signal.
audit_rows() {
  awk -v s="$1" '/^Does the signal/ { on = 1 }
    on && / \((uncertainty|confidence|baseline)\) / { print }
    on && /^difference/ { sub(/^difference \(signal − baseline\)/, "  " s " − baseline"); print }'
}

tensor from npz $D/bbc.npz -o $W/bbc.tsr 2> $W/skipped.log
tensor from npz $D/leebg.npz -o $W/leebg.tsr
for split in 0 1; do tensor where split=$split $W/bbc.tsr -o $W/bbc$split.tsr; done
tensor where 'split!=0' $W/bbc.tsr -o $W/eval.tsr
n=$(tensor info $W/eval.tsr | awk '$1 == "label" { print $0 }' | grep -o '\[[0-9]*' | head -1 | tr -d '[')
seq 0 $((n - 1)) | tensor from csv --name relevant --dtype i64 -o $W/relevant.tsr   # title q <-> body q

echo "BBC retrieval: $n titles -> the same $n bodies (validation + test), UEC, β = 1, bootstrap $BOOT, seed $SEED"
for m in $MODELS; do
  # The posterior as in the demo: lee_background + BBC train pairs, variance scale on BBC validation.
  tensor select query_$m positive_$m --input $W/leebg.tsr | tensor rename query_$m=query positive_$m=positive -o $W/p1.tsr
  tensor select title_$m body_$m --input $W/bbc0.tsr | tensor rename title_$m=query body_$m=positive -o $W/p2.tsr
  tensor select title_$m body_$m --input $W/bbc1.tsr | tensor rename title_$m=query body_$m=positive -o $W/held.tsr
  tensor cat $W/p1.tsr $W/p2.tsr | emb-laplace fit -v --heldout $W/held.tsr -o $W/post-$m.tsr 2> $W/fit-$m.log
  for side in title body; do
    tensor select ${side}_$m --input $W/eval.tsr | tensor rename ${side}_$m=embedding \
      | emb-laplace apply -v --trace --posterior $W/post-$m.tsr --normalize delta -o $W/$side-$m.tsr 2> $W/apply-$side-$m.log
  done
  emb-sim --corpus $W/body-$m.tsr --top-k 10 $W/title-$m.tsr -o $W/hits-$m.tsr
  tensor select trace --input $W/title-$m.tsr | tensor rename trace=query_trace | tensor paste $W/hits-$m.tsr - -o $W/audit-$m.tsr
  echo ""
  echo "== $m: $(grep -o '[0-9.]* % of Fisher entries below λ' $W/fit-$m.log); titles: $(grep -o 'Spearman.*' $W/apply-title-$m.log)"
  calib-metrics --relevant $W/relevant.tsr $W/audit-$m.tsr | awk '$1 == "ndcg@1" || $1 == "mrr"'
  # (The baseline row is the margin of 'scores', the same numbers as emb-sim's 'margin' tensor.)
  for signal in query_trace top1_sigma; do
    calib-metrics --relevant $W/relevant.tsr --uncertainty $signal --bootstrap $BOOT --seed $SEED $W/audit-$m.tsr | audit_rows $signal
  done | awk '!seen[$0]++' | tee $W/rows-$m.txt
done

echo ""
echo "SVE classification: BBC, 5 classes, the real last FFN block of all-MiniLM-L6-v2, test split, bootstrap $BOOT"
L=encoder.layer.5
STACK="residual(linear:$L.intermediate.dense gelu linear:$L.output.dense) layernorm:$L.output.LayerNorm"
tensor from safetensors $D/minilm_layer5_ffn.safetensors | sve-decompose --quiet --prefix $L. -o $W/basis.tsr
tensor from npz $D/bbc_ffn.npz | tensor select ffn_in label split | tensor rename ffn_in=features label=labels -o $W/ffn.tsr
tensor select split --input $W/ffn.tsr -o $W/split.tsr
tensor where split=2 --drop-condition $W/ffn.tsr -o $W/ffn-test.tsr
for cfg in "SVE, M = 4:sve:4" "deep ensemble, M = 4:deep-ensemble:4" "single model (SVF):sve:1"; do
  IFS=: read -r label method members <<< "$cfg"
  sve-train $W/ffn.tsr --basis $W/basis.tsr --stack "$STACK" --split $W/split.tsr \
    --method $method --members $members --seed $SEED -o $W/model.tsr
  sve-predict --model $W/model.tsr --pass labels $W/ffn-test.tsr -o $W/pred.tsr
  echo ""
  echo "== $label: $(calib-metrics $W/pred.tsr | awk '$1 == "accuracy" { print "accuracy", $2 }')"
  for s in entropy $([ "$members" -gt 1 ] && echo mutual_info); do
    calib-metrics --uncertainty $s --bootstrap $BOOT --seed $SEED $W/pred.tsr | audit_rows $s
  done | awk '!seen[$0]++' | tee $W/sve-rows.txt
  acc=$(calib-metrics $W/pred.tsr | awk '$1 == "accuracy" { print $2 }')
  # One row of the SVE table: AUROC [CI] of entropy, mutual information (— for one member) and max p.
  awk -v label="$label" -v acc="$acc" 'function f(i) { return sprintf("%.3f [%.3f, %.3f]", $i, substr($(i+1), 2), $(i+2)) }
    /^entropy \(uncertainty\)/ { e = f(3) } /^mutual_info \(uncertainty\)/ { mi = f(3) } /^max_prob \(baseline\)/ { b = f(3) }
    END { printf "| %s | %.3f | %s | %s | %s |\n", label, acc, e, (mi == "" ? "—" : mi), b }' $W/sve-rows.txt >> $W/sve-table.txt
done

# The README's tables: AUROC [95 % bootstrap interval] for predicting a miss (retrieval) or an error.
if [ -n "${AUDIT_TABLE:-}" ]; then
  {
    echo "| model | UEC posterior trace | σ of the top-1 score | score margin (baseline) |"
    echo "| --- | --- | --- | --- |"
    for m in $MODELS; do
      case $m in minilm) name=all-MiniLM-L6-v2;; paraphrase) name=paraphrase-MiniLM-L3-v2;; e5) name=multilingual-e5-small;; esac
      awk -v name=$name 'function f(i) { return sprintf("%.3f [%.3f, %.3f]", $i, substr($(i+1), 2), $(i+2)) }
        /^query_trace \(uncertainty\)/ { t = f(3) } /^top1_sigma \(uncertainty\)/ { s = f(3) }
        /^margin of scores \(baseline\)/ { b = f(5) }
        END { printf "| %s | %s | %s | **%s** |\n", name, t, s, b }' $W/rows-$m.txt
    done
    echo ""
    echo "| SVE on BBC (70 test rows) | accuracy | entropy | mutual information | max probability (baseline) |"
    echo "| --- | --- | --- | --- | --- |"
    cat $W/sve-table.txt
  } > "$AUDIT_TABLE"
  echo "audit: wrote $AUDIT_TABLE"
fi
