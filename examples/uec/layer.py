#!/usr/bin/env python3
"""The real-last-layer posterior on real activations: MiniLM's last FFN output projection
(encoder.layer.5.output.dense, 384×1536) over the mean-pooled GELU activations of BBC articles
(bbc_ffn.npz, shared/data.md). BBC has one text per article here, so positive pairs are two
articles of the same class (train split; a seeded random partner each).

    layer.py prepare DATA_DIR WORK_DIR       writes layer_train.npz, layer_val.npz (query/positive), layer_test.npy
    layer.py diagnose DATA_DIR WORK_DIR      reads layer_test_{mean,var}.npy, layer_train_mean.npy: is the trace informative?
"""
import sys, os
import numpy as np
from scipy.stats import spearmanr, mannwhitneyu

mode, data, work = sys.argv[1:4]
z = np.load(os.path.join(data, "bbc_ffn.npz"))
H, y, sp = z["ffn_hidden"].astype(np.float32), z["label"], z["split"]
rng = np.random.default_rng(0)

def pairs(split):
    idx = np.nonzero(sp == split)[0]
    partner = np.array([rng.choice(idx[(y[idx] == y[i]) & (idx != i)]) for i in idx])
    perm = rng.permutation(len(idx))
    return H[idx][perm], H[partner][perm]

if mode == "prepare":
    os.makedirs(work, exist_ok=True)
    q, p = pairs(0); np.savez(os.path.join(work, "layer_train.npz"), query=q, positive=p)
    q, p = pairs(1); np.savez(os.path.join(work, "layer_val.npz"), query=q, positive=p)
    np.save(os.path.join(work, "layer_test.npy"), H[sp == 2]); np.save(os.path.join(work, "layer_train.npy"), H[sp == 0])
else:
    L = lambda n: np.load(os.path.join(work, n))
    mt, vt, mtr = L("layer_test_mean.npy"), L("layer_test_var.npy"), L("layer_train_mean.npy")
    yt, ytr = y[sp == 2], y[sp == 0]
    cent = np.stack([mtr[ytr == k].mean(0) for k in range(5)])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    miss = (mt @ cent.T).argmax(1) != yt
    tr = vt.sum(1)
    raw = L("layer_test_raw_mean.npy")
    auc = mannwhitneyu(tr[miss], tr[~miss]).statistic / max(1, miss.sum() * (~miss).sum())
    print(f"real layer: tr Σ mean {tr.mean():.4g} (row std {tr.std():.2g}, CV {tr.std()/tr.mean():.3f}); "
          f"nearest-centroid accuracy {1 - miss.mean():.3f}; AUROC(trace → miss) {auc:.3f}; "
          f"Spearman(trace, 1/‖z‖²) {spearmanr(tr, 1 / (raw**2).sum(1)).correlation:.3f}")
