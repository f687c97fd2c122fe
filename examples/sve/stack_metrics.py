#!/usr/bin/env python3
"""Scores of examples/sve/stack.sh: accuracy, ECE, NLL, Brier and mean mutual information on the
in-distribution test split; OOD AUROC by mutual information and by entropy (in-distribution test
rows against every row of an OOD set; OOD = positive), for each --ood NAME=FILE. One JSON line per
run; --table FILE makes the markdown table of a results file: mean ± std over seeds for each task,
N and method (std with ddof 1; one seed: no ±).

    stack_metrics.py ID.npz [--ood near=NEAR.npz --ood far=FAR.npz] --task bbc --n 1 --method sve4 --seed 1
    stack_metrics.py --table results.jsonl
"""
import argparse, json, sys
from collections import defaultdict
import numpy as np
sys.path.insert(0, __import__("os").path.dirname(__file__))
from metrics import metrics

METHODS = {"svf": "single model (SVF, M = 1)", "sve4": "SVE, M = 4", "de4": "deep ensemble, M = 4"}


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


def cell(vals, fmt, scale=1.0):
    v = np.array(vals, dtype=np.float64) * scale
    if len(v) == 0 or np.isnan(v).any():
        return "—"
    return f"{v.mean():{fmt}}" if len(v) == 1 else f"{v.mean():{fmt}} ± {v.std(ddof=1):{fmt}}"


def table(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    groups = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["layers"], r["method"])].append(r)
    oods = sorted({k[len("auroc_mi_"):] for r in rows for k in r if k.startswith("auroc_mi_")}, reverse=True)
    head = ["task", "N", "method", "seeds", "test n", "acc %", "ECE %", "NLL", "Brier", "mean MI"]
    for o in oods:
        head += [f"{o} OOD: AUROC MI", f"{o}: AUROC entropy"]
    head += ["train s"]
    print("| " + " | ".join(head) + " |")
    print("| " + " | ".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + " |")
    order = {m: i for i, m in enumerate(METHODS)}
    for (task, n, method), g in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], order.get(kv[0][2], 9))):
        col = lambda k: [r.get(k, float("nan")) for r in g]
        line = [task, str(n), METHODS.get(method, method), str(len(g)), str(g[0]["n_test"]),
                cell(col("accuracy"), ".1f", 100), cell(col("ece"), ".1f", 100), cell(col("nll"), ".3f"),
                cell(col("brier"), ".3f"), cell(col("mean_mutual_info"), ".4f")]
        for o in oods:
            if method == "svf":  # one member: MI is 0 for every row, its AUROC says nothing
                line += ["—", cell(col(f"auroc_entropy_{o}"), ".3f")]
            else:
                line += [cell(col(f"auroc_mi_{o}"), ".3f"), cell(col(f"auroc_entropy_{o}"), ".3f")]
        line += [f"{np.median(col('seconds')):.0f}"]
        print("| " + " | ".join(line) + " |")


ap = argparse.ArgumentParser()
ap.add_argument("id", nargs="?")
ap.add_argument("--ood", action="append", default=[], metavar="NAME=FILE")
ap.add_argument("--task", default=""); ap.add_argument("--n", type=int, default=0)
ap.add_argument("--method", default=""); ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--seconds", type=float, default=0); ap.add_argument("--epochs", type=int, default=0)
ap.add_argument("--table")
a = ap.parse_args()
if a.table:
    table(a.table)
    sys.exit(0)
d = np.load(a.id)
test = d["split"] == 2
m = metrics(d["probs"][test], d["labels"][test].astype(int))
m["n_test"] = m.pop("n")
m.update(task=a.task, layers=a.n, method=a.method, seed=a.seed, seconds=a.seconds, epochs=a.epochs,
         mean_mutual_info=float(d["mutual_info"][test].mean()))
for spec in a.ood:
    name, path = spec.split("=", 1)
    o = np.load(path)
    m.update({f"n_{name}": int(len(o["probs"])), f"mean_mutual_info_{name}": float(o["mutual_info"].mean()),
              f"auroc_mi_{name}": auroc(d["mutual_info"][test], o["mutual_info"]),
              f"auroc_entropy_{name}": auroc(d["entropy"][test], o["entropy"])})
print(json.dumps(m))
