#!/usr/bin/env python3
"""Out-of-distribution detection by an ensemble's uncertainty, from sve-predict outputs (numpy only).

    python3 ood.py --label "bbc svf 1" id.npz near.npz far.npz            one JSON line per run
    python3 ood.py --table results.jsonl                                   the markdown table

id.npz: predictions on the in-distribution test rows (probs, labels, entropy, mutual_info);
near.npz, far.npz: predictions on out-of-distribution rows (labels unused). For each score
(mutual information, total entropy, 1 - max probability) the AUROC of telling OOD rows (positive)
from in-distribution rows: the Mann-Whitney statistic, ties counted one half. Accuracy, ECE
(top-label, 15 equal-width bins) and NLL of the in-distribution test rows as in metrics.py.
"""
import argparse, json, sys
import numpy as np
from metrics import metrics
from table import NAMES, grouped, mean_std

SCORES = {"mi": lambda d: d["mutual_info"], "entropy": lambda d: d["entropy"],
          "maxprob": lambda d: 1.0 - d["probs"].max(1)}


def auroc(neg, pos):
    """P(score of a positive > score of a negative) + 1/2 P(equal): average ranks (ties share them)."""
    s = np.concatenate([neg, pos]).astype(np.float64)
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n0, n1 = len(neg), len(pos)
    return float((ranks[n0:].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def run(a):
    d = {k: np.load(f) for k, f in (("id", a.files[0]), ("near", a.files[1]), ("far", a.files[2]))}
    r = metrics(d["id"]["probs"], d["id"]["labels"].astype(int))
    r["mean_mutual_info"] = float(d["id"]["mutual_info"].mean())
    for part in ("near", "far"):
        r[f"n_{part}"] = int(len(d[part]["probs"]))
        for name, f in SCORES.items():
            r[f"{part}_{name}"] = auroc(f(d["id"]), f(d[part]))
    r["label"] = a.label
    print(json.dumps(r))


def table(path):
    groups = grouped(path)
    print("| method | seeds | accuracy % | ECE % | NLL | mean MI | near: MI | near: entropy | near: 1 − max p "
          "| far: MI | far: entropy | far: 1 − max p |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (_s, name), rs in groups.items():
        ms = lambda k, scale=1.0, d=3: mean_std(rs, k, scale, d)
        mi = lambda part: "—" if name == "svf" else ms(f"{part}_mi")
        print(f"| {NAMES.get(name, name)} | {len(rs)} | {ms('accuracy', 100, 2)} | {ms('ece', 100, 2)} | {ms('nll')} "
              f"| {ms('mean_mutual_info', 1, 4)} | {mi('near')} | {ms('near_entropy')} | {ms('near_maxprob')} "
              f"| {mi('far')} | {ms('far_entropy')} | {ms('far_maxprob')} |")
    r = next(iter(groups.values()))[0]
    print(f"\nIn-distribution test rows: {r['n']}; near OOD rows: {r['n_near']}; far OOD rows: {r['n_far']}. "
          "AUROC of telling OOD rows from in-distribution test rows (0.5: no better than chance).")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*")
    ap.add_argument("--label", default="")
    ap.add_argument("--table")
    a = ap.parse_args()
    if a.table:
        table(a.table)
    elif len(a.files) == 3:
        run(a)
    else:
        sys.exit("ood.py: give id.npz near.npz far.npz, or --table results.jsonl")
