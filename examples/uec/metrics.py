#!/usr/bin/env python3
"""Scores for the UEC example (a stop-gap until calib-metrics scores similarity and retrieval):
Spearman (average ranks for ties) of Lee document similarities against the 1225 human
scores, and nDCG@10 / Recall@10 of BBC title -> body retrieval (one relevant body per title:
the same row).

    metrics.py LEE_PAIRS.npz SCORES_DIR NAME...    (reads SCORES_DIR/<name>_lee.npy, <name>_bbc.npy)
"""
import sys, os
import numpy as np
from scipy.stats import spearmanr

pairs = np.load(sys.argv[1])
d = sys.argv[2]
rows = []
for name in sys.argv[3:]:
    S = np.load(os.path.join(d, f"{name}_lee.npy"))
    rho = spearmanr(S[pairs["i"], pairs["j"]], pairs["score"]).correlation
    idx = np.load(os.path.join(d, f"{name}_bbc.npy"))
    n = idx.shape[0]
    hit = idx[:, :10] == np.arange(n)[:, None]
    rank = np.where(hit.any(1), hit.argmax(1), -1)
    ndcg = np.where(rank >= 0, 1 / np.log2(np.maximum(rank, 0) + 2), 0).mean()
    recall = hit.any(1).mean()
    rows.append((name, rho, ndcg, recall))
labels = {"average": "average (uniform fusion, cosine)", "uec-fused-cosine": "UEC fused, cosine (β = 0)",
          "uec": "UEC (fused + uncertainty-aware similarity)"}
print("| method | Lee Spearman | BBC nDCG@10 | BBC Recall@10 |")
print("| --- | --- | --- | --- |")
for name, rho, ndcg, rec in rows:
    print(f"| {labels.get(name, name)} | {rho:.4f} | {ndcg:.4f} | {rec:.4f} |")
