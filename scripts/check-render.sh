#!/usr/bin/env bash
# The job files of `qlora render` through the real validators (docs/DISTRIBUTED.md): Kubernetes manifests against
# the Kubernetes schemas, offline (kubernetes-validate from PyPI, in .venv-render), sbatch scripts through
# `bash -n` and shellcheck. A single job and a sweep of each kind.
# Usage: scripts/check-render.sh [path/to/qlora]
set -euo pipefail
cd "$(dirname "$0")/.."
QLORA=$(realpath "${1:-.build/release/qlora}")
VENV=.venv-render
if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check kubernetes-validate==1.37.0
fi
command -v shellcheck >/dev/null || { echo "shellcheck is missing (apt-get install shellcheck)"; exit 1; }
WORK=$(mktemp -d /tmp/qlora-render.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail=0
"$QLORA" render kubernetes pipelines/tiny.yaml --output "$WORK/k8s-one" > /dev/null
"$QLORA" render kubernetes pipelines/tiny.yaml --gpus-per-node 8 --image registry.example/qlora:0.1.0-cuda \
  --grid training.learning_rate=1e-4,3e-4 --grid lora.lora_rank=8,16 --output "$WORK/k8s-sweep" > /dev/null
"$QLORA" render slurm pipelines/tiny.yaml --nodes 2 --gpus-per-node 4 --output "$WORK/slurm-one" > /dev/null
"$QLORA" render slurm pipelines/tiny.yaml --grid training.learning_rate=1e-4,3e-4 --output "$WORK/slurm-sweep" > /dev/null
for f in "$WORK"/k8s-*/*.yaml; do
  if "$VENV/bin/kubernetes-validate" --strict "$f" > "$WORK/kv.log" 2>&1; then
    echo "PASS: $(basename "$(dirname "$f")")/$(basename "$f"): $(grep -c passed "$WORK/kv.log") resources valid (kubernetes-validate --strict)"
  else
    echo "FAIL: $f"; cat "$WORK/kv.log"; fail=1
  fi
done
for f in "$WORK"/slurm-*/*; do
  if bash -n "$f" && shellcheck "$f"; then
    echo "PASS: $(basename "$(dirname "$f")")/$(basename "$f"): bash -n and shellcheck"
  else
    echo "FAIL: $f"; fail=1
  fi
done
exit "$fail"
