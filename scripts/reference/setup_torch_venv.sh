#!/usr/bin/env bash
# Create (or refresh) .venv-torch at the repository root with the pinned torch reference stack from
# scripts/reference/requirements-torch.txt: torch (PyPI default wheel, runs on CPU), transformers, gguf,
# safetensors, accelerate, peft, bitsandbytes. About 5.5 GB on disk; the first install takes minutes.
#
#   scripts/reference/setup_torch_venv.sh            # uses python3 (3.11 expected)
#   PYTHON=python3.11 scripts/reference/setup_torch_venv.sh
#
# Idempotent: when .venv-torch already holds exactly these requirements (a stamp with the
# requirements' sha256), it does nothing. Only PyPI is contacted; nothing comes from a model hub.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REQ="$ROOT/scripts/reference/requirements-torch.txt"
VENV="$ROOT/.venv-torch"
PY="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"

versions() {
    "$VENV/bin/python" -c 'import torch, transformers, gguf, safetensors, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__, "safetensors", safetensors.__version__)' 2>/dev/null
}

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "[venv-torch] $VENV is up to date ($(versions))"
    exit 0
fi

ver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$ver" != "3.11" ]]; then
    echo "[venv-torch] warning: $PY is Python $ver; the pins were resolved on 3.11" >&2
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[venv-torch] creating $VENV with $PY ($ver)"
    "$PY" -m venv "$VENV"
fi
rm -f "$STAMP"
start=$SECONDS
# --no-cache-dir: the wheels are ~3 GB; do not keep a second copy in pip's cache.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --no-cache-dir -r "$REQ"
"$VENV/bin/python" -m pip check --disable-pip-version-check
echo "$want" > "$STAMP"
echo "[venv-torch] ready in $((SECONDS - start)) s: $(versions); $(du -sh "$VENV" | cut -f1) on disk"
