#!/usr/bin/env python3
"""Accuracy, ECE, NLL and Brier of sve-predict output, in numpy (methods.md 3 definitions).

A stand-in until calib-metrics exists:  tensor to npz pred.tsr -o pred.npz && python3 metrics.py pred.npz
The npz holds probs (N×K), labels (N) and optionally split (N): only rows with split == --split
(default 2, the test split) are scored when split is present.

ECE: top-label confidence, 15 equal-width bins (lo, hi] (0 goes to the first bin), weights n_b/N.
NLL: mean −ln p_y, p clipped at the float32 eps like scikit-learn. Brier: Σ_k (p_k − 1[y=k])², range [0, 2].
"""
import argparse, json
import numpy as np


def metrics(probs, labels, bins=15):
    probs = probs.astype(np.float64)
    n, k = probs.shape
    pred = probs.argmax(1)  # ties: lowest index
    conf = probs[np.arange(n), pred]
    correct = (pred == labels).astype(np.float64)
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.sum() / n * abs(correct[m].mean() - conf[m].mean())
    eps = np.finfo(np.float32).eps
    p_y = np.clip(probs[np.arange(n), labels], eps, 1 - eps)
    onehot = np.eye(k)[labels]
    return {"n": int(n), "accuracy": float(correct.mean()), "ece": float(ece), "nll": float(-np.log(p_y).mean()),
            "brier": float(((probs - onehot) ** 2).sum(1).mean())}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("npz")
    ap.add_argument("--split", type=int, default=2)
    ap.add_argument("--label", default="")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    d = np.load(a.npz)
    mask = d["split"] == a.split if "split" in d.files else np.ones(len(d["labels"]), bool)
    m = metrics(d["probs"][mask], d["labels"][mask].astype(int))
    if "mutual_info" in d.files:
        m["mean_mutual_info"] = float(d["mutual_info"][mask].mean())
    if a.json:
        m["label"] = a.label
        print(json.dumps(m))
    else:
        print(f"{a.label:28s} n={m['n']:5d}  acc {100*m['accuracy']:6.2f}  ECE {100*m['ece']:5.2f}  "
              f"NLL {m['nll']:.4f}  Brier {m['brier']:.4f}")
