# Sourced by run.sh, sweep.sh and layer.sh: where the data, the tools and Python are, all inside
# the project by default (make data, make release, make venv). Paths are made absolute, since the
# scripts change into WORK.
#   DATA  the full dataset (default data/full, made by `make data`); examples/data (the bundled
#         subset) works too, for a quick run
#   WORK  scratch directory (default examples/uec/out, ignored by git)
#   BIN   the built tools (default .build/release)
#   PY    a Python with numpy and scipy (default .venv/bin/python, made by `make venv`)
root=$(cd "$here/../.." && pwd)
DATA=${DATA:-$root/data/full}
WORK=${WORK:-$here/out}
BIN=${BIN:-$root/.build/release}
PY=${PY:-$root/.venv/bin/python}
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$PWD" "$1" ;; esac; }
[ -d "$DATA" ] || { echo "$0: no data directory $DATA (make data, or DATA=examples/data for the bundled subset)" >&2; exit 66; }
[ -x "$BIN/tensor" ] || { echo "$0: no built tools in $BIN (make release)" >&2; exit 69; }
command -v "$PY" >/dev/null || { echo "$0: no python at $PY (make venv)" >&2; exit 69; }
DATA=$(abs "$DATA"); WORK=$(abs "$WORK"); BIN=$(abs "$BIN")
case $PY in */*) PY=$(abs "$PY") ;; esac
export PATH="$BIN:$PATH"
# The Lee pairs and human scores: lee_pairs.npz in the full dataset, inside lee.npz in the subset.
LEE_PAIRS=$DATA/lee_pairs.npz
[ -f "$LEE_PAIRS" ] || LEE_PAIRS=$DATA/lee.npz
