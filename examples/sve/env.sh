# Sourced by run.sh and ood.sh (after setting HERE): where the data, the tools and Python are, all
# inside the project by default, and the pretrained stack both train.
#   DATA  the full dataset (default data/full, made by `make data`); examples/data (the bundled
#         subset) works too, for a quick run
#   BIN   the built tools (default .build/release)
#   PY    a Python with numpy (default .venv/bin/python, made by `make venv`)
ROOT=$(cd "$HERE/../.." && pwd)
DATA=${DATA:-$ROOT/data/full}
BIN=${BIN:-$ROOT/.build/release}
PY=${PY:-$ROOT/.venv/bin/python}
[ -f "$DATA/minilm_layer5_ffn.safetensors" ] || { echo "$0: no data in $DATA (make data, or DATA=examples/data for the bundled subset)" >&2; exit 66; }
[ -x "$BIN/sve-train" ] || { echo "$0: no built tools in $BIN (make release)" >&2; exit 69; }
command -v "$PY" >/dev/null || { echo "$0: no python at $PY (make venv)" >&2; exit 69; }
PATH="$BIN:$PATH"
# The real last FFN block of all-MiniLM-L6-v2: intermediate.dense, GELU, output.dense, residual,
# output.LayerNorm.
L=encoder.layer.5
STACK="residual(linear:$L.intermediate.dense gelu linear:$L.output.dense) layernorm:$L.output.LayerNorm"
