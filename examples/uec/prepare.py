#!/usr/bin/env python3
"""Split the real embeddings of the full-size data set (scripts/make-data.py --out DIR; examples/data/README.md) into the arrays the UEC
example pipeline feeds to the tools. numpy only; no scoring happens here.

    prepare.py DATA_DIR WORK_DIR MODEL...

Per model it writes, in WORK_DIR:
  <m>_train.npz   query/positive: BBC title -> body of the train split (split 0) and the
                  lee_background first sentence -> rest pairs
  <m>_val.npz     query/positive: BBC title -> body of the validation split (split 1)
  <m>_lee.npy     the 50 Lee documents (scored against the 1225 human pairs)
  <m>_title.npy, <m>_body.npy   BBC test split (split 2): queries and corpus for retrieval
"""
import sys, os
import numpy as np

data, work, models = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(work, exist_ok=True)
for m in models:
    bbc = np.load(os.path.join(data, f"bbc_{m}.npz"))
    bg = np.load(os.path.join(data, f"leebg_{m}.npz"))
    sp = bbc["split"]
    tq = np.concatenate([bbc["title"][sp == 0], bg["query"]]).astype(np.float32)
    tp = np.concatenate([bbc["body"][sp == 0], bg["positive"]]).astype(np.float32)
    # Shuffle the training pairs (seeded) so that in-batch negatives mix topics and sources.
    perm = np.random.default_rng(0).permutation(len(tq))
    np.savez(os.path.join(work, f"{m}_train.npz"), query=tq[perm], positive=tp[perm])
    np.savez(os.path.join(work, f"{m}_val.npz"), query=bbc["title"][sp == 1].astype(np.float32),
             positive=bbc["body"][sp == 1].astype(np.float32))
    np.save(os.path.join(work, f"{m}_lee.npy"), np.load(os.path.join(data, f"lee_docs_{m}.npy")).astype(np.float32))
    np.save(os.path.join(work, f"{m}_title.npy"), bbc["title"][sp == 2].astype(np.float32))
    np.save(os.path.join(work, f"{m}_body.npy"), bbc["body"][sp == 2].astype(np.float32))
    print(f"{m}: train {len(tq)} pairs, val {(sp == 1).sum()}, test {(sp == 2).sum()}", file=sys.stderr)
