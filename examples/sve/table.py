#!/usr/bin/env python3
"""Markdown table (mean ± std over seeds) from the results.jsonl that run.sh writes.

grouped() and mean_std() are shared with ood.py: runs are labelled "DATA METHOD SEED".
"""
import collections, json, sys
import numpy as np

NAMES = {"svf": "single model (SVF, M=1)", "sve4": "SVE, M=4", "sve8": "SVE, M=8",
         "de4": "deep ensemble, M=4", "de8": "deep ensemble, M=8"}


def grouped(path):
    """The runs of a results.jsonl, grouped by (data, method) in file order."""
    groups = collections.OrderedDict()
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            s, name, _seed = r["label"].split()
            groups.setdefault((s, name), []).append(r)
    return groups


def mean_std(rs, key, scale=1.0, d=2):
    v = np.array([r[key] for r in rs]) * scale
    return f"{v.mean():.{d}f} ± {v.std():.{d}f}" if len(v) > 1 else f"{v.mean():.{d}f}"


if __name__ == "__main__":
    print("| data | method | seeds | test n | accuracy % | ECE % (15 bins) | NLL | Brier | mean MI |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (s, name), rs in grouped(sys.argv[1]).items():
        ms = lambda k, scale=1.0, d=2: mean_std(rs, k, scale, d)
        print(f"| {s} | {NAMES.get(name, name)} | {len(rs)} | {rs[0]['n']} | {ms('accuracy', 100)} | {ms('ece', 100)} | "
              f"{ms('nll', 1, 3)} | {ms('brier', 1, 3)} | {ms('mean_mutual_info', 1, 4)} |")
