#!/usr/bin/env bash
# Start-up of every program: `--help`, and `tensor info` of a stream of one tiny tensor, against
# the start-up of the route a user would otherwise take, a Python script that imports numpy
# (`python -c 'import numpy'`). The goal (issue 16): every program 10 ms or less.
# Usage: bash bench/startup.sh      (RUNS, default 30, runs each; hyperfine -N, 3 warm-ups)
# Needs: a release build (make release), hyperfine, PY (default .venv/bin/python) with numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/summary.sh
B=.build/release
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-30}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

programs=(tensor emb-laplace emb-fuse emb-sim emb-encode sve-decompose sve-train sve-predict calib-metrics)
printf '1,2\n3,4\n' > "$W/tiny.csv"
$B/tensor from csv "$W/tiny.csv" --name x -o "$W/tiny.tsr"

cmds=()
for p in "${programs[@]}"; do cmds+=("$B/$p --help"); done
cmds+=("$B/tensor info $W/tiny.tsr" "$PY -c 'import numpy'")
hyperfine -N -w 3 -r "$RUNS" --export-json "$W/h.json" "${cmds[@]}" > "$W/hyperfine.log" 2>&1 || { cat "$W/hyperfine.log" >&2; exit 1; }

"$PY" - "$W/h.json" "${#programs[@]}" <<'PY' > "$W/table.txt"
import json, statistics, sys
runs = json.load(open(sys.argv[1]))["results"]
n = int(sys.argv[2])
ms = [1000 * statistics.median(r["times"]) for r in runs]
names = [" ".join(w.split("/")[-1] for w in r["command"].split()) for r in runs]
peer = ms[-1]
print(f"{'command':<28} {'median ms':>10}")
for name, t in zip(names, ms):
    print(f"{name[:28]:<28} {t:10.1f}")
slowest = max(range(n), key=lambda i: ms[i])
print(f"slowest --help: {names[slowest]} {ms[slowest]:.1f} ms; tensor info of a tiny stream {ms[n]:.1f} ms; "
      f"python -c 'import numpy' {peer:.1f} ms; goal 10 ms")
print(f"RESULT_LINE\t{ms[slowest]:.1f}\t{peer:.1f}")
print(f"RESULT_INFO\t{ms[n]:.1f}\t{peer:.1f}")
PY
grep -v '^RESULT_' "$W/table.txt"
read -r _ ours peer < <(grep '^RESULT_LINE' "$W/table.txt")
bench_result "start-up" "slowest --help of the 9 programs, ms (peer: python -c 'import numpy'; goal 10 ms)" "$ours" "$peer"
read -r _ ours peer < <(grep '^RESULT_INFO' "$W/table.txt")
bench_result "start-up" "tensor info of a tiny stream, ms (peer: python -c 'import numpy')" "$ours" "$peer"
