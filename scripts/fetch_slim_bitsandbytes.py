#!/usr/bin/env python3
"""Extract a slim bitsandbytes (the GPU check's PyTorch peer: NF4 + double quant, paged AdamW) from its pinned wheel.

Usage (from anywhere; used by scripts/gpu-check.sh build):

    python3 scripts/fetch_slim_bitsandbytes.py OUT_DIR

The GPU machine has PyTorch, transformers and peft but no bitsandbytes, and no network. The wheel (pinned by sha256,
downloaded with pip into .cache/wheels/) holds one native library per CUDA/ROCm/XPU version, 43 MB in all; this
keeps the Python package, the CPU library and the CUDA 12.8 and 13.0 libraries (about 7 MB with xz: what fits beside
the repository and the rest of the bundle in the 64 MiB a call carries), so the peer runs with a torch built for CUDA
12.x or 13.x (bitsandbytes picks the library of torch's CUDA version; gpu-check.sh sets BNB_CUDA_VERSION to 128 or 130
when that one is missing). OUT_DIR/bitsandbytes/ is then importable with PYTHONPATH=OUT_DIR. Standard library only.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from fetch_datasets import FetchError, ensure_wheel

WHEEL = {
    "requirement": "bitsandbytes==0.50.2",
    "filename": "bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl",
    "sha256": "55348a9a4a21bfd99cf8c7b32fe67b4030ae5c2a05738e03c1747f65fa6ec283",
}
KEPT_LIBRARIES = {"libbitsandbytes_cpu.so", "libbitsandbytes_cuda128.so", "libbitsandbytes_cuda130.so"}


def extract(whl: Path, out: Path) -> int:
    kept = 0
    with zipfile.ZipFile(whl) as zf:
        for info in zf.infolist():
            name = info.filename
            if not name.startswith("bitsandbytes/") or info.is_dir():
                continue
            if name.endswith(".so") and Path(name).name not in KEPT_LIBRARIES:
                continue
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            kept += info.file_size
    missing = [lib for lib in KEPT_LIBRARIES if not (out / "bitsandbytes" / lib).exists()]
    if missing:
        raise FetchError(f"{whl.name} has no {', '.join(sorted(missing))}")
    return kept


def main() -> int:
    if len(sys.argv) != 2:
        sys.stderr.write("usage: fetch_slim_bitsandbytes.py OUT_DIR\n")
        return 2
    out = Path(sys.argv[1])
    try:
        kept = extract(ensure_wheel(WHEEL), out)
    except FetchError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    print(f"[bitsandbytes] {WHEEL['requirement']}: package and {len(KEPT_LIBRARIES)} libraries ({kept:,} bytes) in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
