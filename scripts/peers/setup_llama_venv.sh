#!/usr/bin/env bash
# Create (or refresh) .venv-llama at the repository root with llama-cpp-python from PyPI (the peer of
# `qlora bench generate`, scripts/peers/llama_cpp_generate.py). PyPI has only the sdist, so pip builds
# llama.cpp from source: a C/C++ compiler is needed (build-essential); CMake comes from PyPI through the
# build backend (scikit-build-core). The build is native (GGML_NATIVE=ON: AVX2/FMA on this machine, the
# same instructions our kernels use), CPU only, without the multimodal tools (-DLLAVA_BUILD=OFF).
#
#   scripts/peers/setup_llama_venv.sh
#   PYTHON=python3.11 JOBS=2 scripts/peers/setup_llama_venv.sh
#
# Idempotent: when .venv-llama already holds exactly these requirements (a stamp with the requirements'
# sha256 and the CMake flags), it does nothing. Only PyPI is contacted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REQ="$ROOT/scripts/peers/requirements-llama.txt"
VENV="$ROOT/.venv-llama"
PY="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha256"
FLAGS="-DGGML_NATIVE=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"
want="$( (cat "$REQ"; echo "$FLAGS") | sha256sum | cut -d' ' -f1)"

version() { "$VENV/bin/python" -c 'import llama_cpp; print("llama-cpp-python", llama_cpp.__version__)' 2>/dev/null; }

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "[venv-llama] $VENV is up to date ($(version))"
    exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[venv-llama] creating $VENV with $PY"
    "$PY" -m venv "$VENV"
fi
rm -f "$STAMP"
start=$SECONDS
echo "[venv-llama] building llama-cpp-python (CMAKE_ARGS=\"$FLAGS\"); this takes minutes"
CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="${JOBS:-$(nproc)}" \
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --no-cache-dir -r "$REQ"
echo "$want" > "$STAMP"
echo "[venv-llama] ready in $((SECONDS - start)) s: $(version)"
