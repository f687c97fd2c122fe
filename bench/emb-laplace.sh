#!/bin/sh
# Runs bench/emb-laplace.py with a release build and a python with numpy, torch, laplace-torch
# (PY, default the project's .venv after `make venv-bench`).
#   bench/emb-laplace.sh [--pairs N] [--inputs P]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-$here/../.venv/bin/python}
cd "$here/.." && swift build -c release --static-swift-stdlib --product emb-laplace >/dev/null && swift build -c release --static-swift-stdlib --product tensor >/dev/null
exec "$PY" "$here/emb-laplace.py" --bin "$here/../.build/release" "$@"
