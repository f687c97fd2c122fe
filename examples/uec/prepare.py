#!/usr/bin/env python3
"""Split the real embeddings of DATA_DIR into the arrays the UEC example pipeline feeds to the
tools. numpy only; no scoring happens here.

    prepare.py DATA_DIR WORK_DIR MODEL...

DATA_DIR is the full dataset (data/full, made by `make data`: bbc_<m>.npz, leebg_<m>.npz,
lee_docs_<m>.npy) or the bundled subset (examples/data: bbc.npz, leebg.npz, lee.npz, whose arrays
carry the model in their names); see examples/data/README.md.

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
full = os.path.exists(os.path.join(data, f"bbc_{models[0]}.npz"))


def load(m):
    """BBC title/body/split, lee_background query/positive and the Lee documents of model m."""
    if full:
        bbc = np.load(os.path.join(data, f"bbc_{m}.npz"))
        bg = np.load(os.path.join(data, f"leebg_{m}.npz"))
        return bbc, bg, np.load(os.path.join(data, f"lee_docs_{m}.npy"))
    bbc, bg = np.load(os.path.join(data, "bbc.npz")), np.load(os.path.join(data, "leebg.npz"))
    bbc = {"title": bbc[f"title_{m}"], "body": bbc[f"body_{m}"], "split": bbc["split"]}
    bg = {"query": bg[f"query_{m}"], "positive": bg[f"positive_{m}"]}
    return bbc, bg, np.load(os.path.join(data, "lee.npz"))[f"docs_{m}"]


for m in models:
    bbc, bg, lee = load(m)
    sp = bbc["split"]
    tq = np.concatenate([bbc["title"][sp == 0], bg["query"]]).astype(np.float32)
    tp = np.concatenate([bbc["body"][sp == 0], bg["positive"]]).astype(np.float32)
    # Shuffle the training pairs (seeded) so that in-batch negatives mix topics and sources.
    perm = np.random.default_rng(0).permutation(len(tq))
    np.savez(os.path.join(work, f"{m}_train.npz"), query=tq[perm], positive=tp[perm])
    np.savez(os.path.join(work, f"{m}_val.npz"), query=bbc["title"][sp == 1].astype(np.float32),
             positive=bbc["body"][sp == 1].astype(np.float32))
    np.save(os.path.join(work, f"{m}_lee.npy"), lee.astype(np.float32))
    np.save(os.path.join(work, f"{m}_title.npy"), bbc["title"][sp == 2].astype(np.float32))
    np.save(os.path.join(work, f"{m}_body.npy"), bbc["body"][sp == 2].astype(np.float32))
    print(f"{m}: train {len(tq)} pairs, val {(sp == 1).sum()}, test {(sp == 2).sum()}", file=sys.stderr)
