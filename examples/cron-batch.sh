#!/usr/bin/env bash
# A cron-style batch job: every .npy file of embeddings dropped into INBOX is made
# probabilistic, searched against a corpus, and its top-k neighbours with uncertainty-aware
# scores are written to OUTBOX as CSV. Safe to run from cron every few minutes:
#   - one run at a time (flock); a file is processed once (its result marks it done);
#   - results appear atomically (-o writes a temporary file, then renames it);
#   - a failure on one file is logged and leaves no partial result; the exit status is non-zero
#     if any file failed, so cron mails it;
#   - silent when there is nothing to do (no progress bars: stderr is not a terminal).
#
#   */5 * * * *  POSTERIOR=/srv/uec/post.tsr CORPUS=/srv/uec/corpus.tsr \
#                INBOX=/srv/uec/inbox OUTBOX=/srv/uec/outbox /opt/uec/examples/cron-batch.sh
#
# POSTERIOR comes from 'emb-laplace fit', CORPUS from 'emb-laplace apply' on the corpus
# embeddings; TOPK (10), BETA (1), LOG (OUTBOX/batch.log) are optional.
set -uo pipefail
: "${POSTERIOR:?set POSTERIOR}" "${CORPUS:?set CORPUS}" "${INBOX:?set INBOX}" "${OUTBOX:?set OUTBOX}"
TOPK=${TOPK:-10}
BETA=${BETA:-1}
LOG=${LOG:-$OUTBOX/batch.log}
mkdir -p "$OUTBOX"
exec 9>"$OUTBOX/.lock"
flock -n 9 || exit 0                    # another run is still busy: let it finish

failed=0
shopt -s nullglob
for npy in "$INBOX"/*.npy; do
  name=$(basename "$npy" .npy)
  out="$OUTBOX/$name.topk.csv"
  [ -e "$out" ] && continue
  if { tensor from npy "$npy" --name embedding \
      | emb-laplace apply --posterior "$POSTERIOR" --normalize delta \
      | emb-sim --corpus "$CORPUS" --top-k "$TOPK" --beta "$BETA" -o "$OUTBOX/.$name.tsr"; } 2>>"$LOG"; then
    # One line per query row: its k corpus indices, then their k scores.
    tensor to csv --tensor indices "$OUTBOX/.$name.tsr" > "$OUTBOX/.$name.i" &&
      tensor to csv --tensor scores "$OUTBOX/.$name.tsr" > "$OUTBOX/.$name.s" &&
      paste -d, "$OUTBOX/.$name.i" "$OUTBOX/.$name.s" > "$OUTBOX/.$name.csv" &&
      mv "$OUTBOX/.$name.csv" "$out" &&
      echo "$(date -Is) ok $name" >> "$LOG" || { echo "$(date -Is) FAILED $name (csv)" >> "$LOG"; failed=1; }
  else
    echo "$(date -Is) FAILED $name (status ${PIPESTATUS[*]})" >> "$LOG"
    failed=1
  fi
  rm -f "$OUTBOX/.$name".{tsr,i,s,csv}
done
exit $failed
