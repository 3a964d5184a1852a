#!/usr/bin/env bash
# Create (or refresh) .venv-ref at the repository root with the pinned reference stack from
# scripts/reference/requirements.txt: HF tokenizers + transformers + gguf + Jinja2, no torch.
#
#   scripts/reference/setup_venv.sh            # uses python3 (3.11 expected)
#   PYTHON=python3.11 scripts/reference/setup_venv.sh
#
# Idempotent: when .venv-ref already holds exactly these requirements (a stamp with the
# requirements' sha256), it does nothing. Only PyPI is contacted; nothing comes from a model hub.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REQ="$ROOT/scripts/reference/requirements.txt"
VENV="$ROOT/.venv-ref"
PY="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "[venv] $VENV is up to date ($("$VENV/bin/python" -c 'import tokenizers, transformers; print("tokenizers", tokenizers.__version__, "transformers", transformers.__version__)' 2>/dev/null))"
    exit 0
fi

ver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$ver" != "3.11" ]]; then
    echo "[venv] warning: $PY is Python $ver; the pins were resolved on 3.11" >&2
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[venv] creating $VENV with $PY ($ver)"
    "$PY" -m venv "$VENV"
fi
rm -f "$STAMP"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQ"
"$VENV/bin/python" -m pip check --disable-pip-version-check
if "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    echo "[venv] note: torch is importable in $VENV; the scripts do not need it" >&2
fi
echo "$want" > "$STAMP"
"$VENV/bin/python" -c 'import tokenizers, transformers, gguf, jinja2; print("[venv] ready: tokenizers", tokenizers.__version__, "transformers", transformers.__version__, "jinja2", jinja2.__version__)'
