#!/bin/sh
# Runs bench/emb-sim.py with a release build and a python that has numpy (and faiss-cpu)
# (PY, default the project's .venv after `make venv-bench`).
#   bench/emb-sim.sh [--corpus-rows N] [--queries Q]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-$here/../.venv/bin/python}
cd "$here/.." && swift build -c release --product emb-sim >/dev/null && swift build -c release --product tensor >/dev/null
exec "$PY" "$here/emb-sim.py" --bin "$here/../.build/release" "$@"
