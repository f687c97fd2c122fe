#!/bin/sh
# Runs bench/emb-sim.py with a release build, the plain-sgemm yardstick (bench/sgemm.c, built here
# against the same OpenBLAS) and a python that has numpy (and faiss-cpu): PY, default the project's
# .venv after `make venv-bench`, else .venv-bench (python3 -m venv .venv-bench; pip install numpy faiss-cpu).
#   bench/emb-sim.sh [--corpus-rows N] [--queries Q]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-$here/../.venv/bin/python}
[ -x "$PY" ] || PY=$here/../.venv-bench/bin/python
cd "$here/.." && swift build -c release --static-swift-stdlib --product emb-sim >/dev/null && swift build -c release --static-swift-stdlib --product tensor >/dev/null
cc -O2 "$here/sgemm.c" $(pkg-config --cflags --libs openblas) -o "$here/../.build/release/bench-sgemm"
# The integer passes of --precision int16 and int8 alone, every kernel this CPU runs (a mismatch
# fails here), compiled as the programs' C is: by the Swift toolchain's clang when it is on PATH.
CC=$(command -v clang || echo cc)
"$CC" -O2 -I "$here/../Sources/CSearch/include" "$here/integer-kernels.c" -lm -o "$here/../.build/release/bench-integer-kernels"
"$here/../.build/release/bench-integer-kernels"
exec "$PY" "$here/emb-sim.py" --bin "$here/../.build/release" --sgemm "$here/../.build/release/bench-sgemm" "$@"
