#!/usr/bin/env python3
"""Markdown table (mean ± std over seeds) from the results.jsonl that run.sh writes."""
import collections, json, sys
import numpy as np

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = collections.OrderedDict()
for r in rows:
    s, name, _seed = r["label"].split()
    groups.setdefault((s, name), []).append(r)
names = {"svf": "single model (SVF, M=1)", "sve4": "SVE, M=4", "sve8": "SVE, M=8",
         "de4": "deep ensemble, M=4", "de8": "deep ensemble, M=8"}
print("| data | method | seeds | test n | accuracy % | ECE % (15 bins) | NLL | Brier | mean MI |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for (s, name), rs in groups.items():
    def ms(k, scale=1.0, d=2):
        v = np.array([r[k] for r in rs]) * scale
        return f"{v.mean():.{d}f} ± {v.std():.{d}f}" if len(v) > 1 else f"{v.mean():.{d}f}"
    print(f"| {s} | {names.get(name, name)} | {len(rs)} | {rs[0]['n']} | {ms('accuracy', 100)} | {ms('ece', 100)} | "
          f"{ms('nll', 1, 3)} | {ms('brier', 1, 3)} | {ms('mean_mutual_info', 1, 4)} |")
