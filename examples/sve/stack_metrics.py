#!/usr/bin/env python3
"""Scores of examples/sve/stack.sh: accuracy, ECE, NLL, Brier and mean mutual information on the
in-distribution test split, OOD AUROC by mutual information and by entropy (in-distribution test
rows against every OOD row; OOD = positive). One JSON line per run; --table makes the markdown table.
"""
import argparse, json, sys
import numpy as np
sys.path.insert(0, __import__("os").path.dirname(__file__))
from metrics import metrics


def auroc(neg, pos):
    """P(score of an OOD row > score of an in-distribution row), ties counted half (Mann-Whitney)."""
    s = np.concatenate([neg, pos]).astype(np.float64)
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s)); ranks[order] = np.arange(1, len(s) + 1)
    for v in np.unique(s):  # average ranks of ties
        m = s == v
        ranks[m] = ranks[m].mean()
    r = ranks[len(neg):].sum()
    return float((r - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


ap = argparse.ArgumentParser()
ap.add_argument("id", nargs="?"); ap.add_argument("ood", nargs="?")
ap.add_argument("--label", default=""); ap.add_argument("--seconds", type=float, default=0)
ap.add_argument("--epochs", type=int, default=0)
ap.add_argument("--table")
a = ap.parse_args()
if a.table:
    rows = [json.loads(l) for l in open(a.table) if l.strip()]
    print("| run | acc % | ECE % | NLL | Brier | mean MI (test) | mean MI (OOD) | AUROC MI | AUROC entropy | train s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['label']} | {100*r['accuracy']:.1f} | {100*r['ece']:.1f} | {r['nll']:.3f} | {r['brier']:.3f} | "
              f"{r['mean_mutual_info']:.4f} | {r['ood_mean_mutual_info']:.4f} | {r['auroc_mi']:.3f} | {r['auroc_entropy']:.3f} | {r['seconds']:.0f} |")
    sys.exit(0)
d, o = np.load(a.id), np.load(a.ood)
test = d["split"] == 2
m = metrics(d["probs"][test], d["labels"][test].astype(int))
m.update(label=a.label, seconds=a.seconds, epochs=a.epochs, n_ood=int(len(o["probs"])),
         mean_mutual_info=float(d["mutual_info"][test].mean()), ood_mean_mutual_info=float(o["mutual_info"].mean()),
         auroc_mi=auroc(d["mutual_info"][test], o["mutual_info"]), auroc_entropy=auroc(d["entropy"][test], o["entropy"]))
print(json.dumps(m))
