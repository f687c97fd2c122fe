#!/usr/bin/env python3
"""Is the Laplace variance informative? For each model, on the BBC test titles: does the
per-row trace tr Σ(x) predict a retrieval miss (AUROC; 0.5 = no information), and how much of
it is just the embedding's norm (Spearman with 1/‖e‖²)?

    diagnose.py WORK_DIR MODEL...     (reads <m>_title_{mean,var}.npy, <m>_body_mean.npy, <m>_title.npy)
"""
import sys, os
import numpy as np
from scipy.stats import spearmanr, mannwhitneyu

work = sys.argv[1]
L = lambda n: np.load(os.path.join(work, n))
for m in sys.argv[2:]:
    mt, mb, vt = L(f"{m}_title_mean.npy"), L(f"{m}_body_mean.npy"), L(f"{m}_title_var.npy")
    R = mt @ mb.T
    rank = (R > np.diag(R)[:, None]).sum(1)
    tr = vt.sum(1)
    miss = rank > 0
    auc = mannwhitneyu(tr[miss], tr[~miss]).statistic / (miss.sum() * (~miss).sum())
    norm = np.linalg.norm(L(f"{m}_title.npy"), axis=1)
    print(f"{m}: tr Σ mean {tr.mean():.4g} (row std {tr.std():.2g}); top-1 hit {1 - miss.mean():.3f}; "
          f"AUROC(trace → miss) {auc:.3f}; Spearman(trace, 1/‖e‖²) {spearmanr(tr, 1 / norm**2).correlation:.3f}")
