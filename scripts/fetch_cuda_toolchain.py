#!/usr/bin/env python3
"""Fetch NVRTC (the CUDA runtime compiler) from its pinned PyPI wheel, so CI compiles every CUDA kernel without a GPU.

Usage (from anywhere; paths are resolved against the repository root):

    python3 scripts/fetch_cuda_toolchain.py

What it does (idempotent, stdlib only):
  1. `python -m pip download --no-deps` nvidia-cuda-nvrtc==13.0.88 into .cache/wheels/ (skipped when a wheel with the
     expected sha256 is there) and verifies its sha256.
  2. Extracts `libnvrtc.so.13` and `libnvrtc-builtins.so.13.0` to .cache/cuda/lib/ (temp file, then rename).

qlora itself finds NVRTC at run time wherever the wheel is installed (Sources/QLoRACUDA/CUDALibraries.swift); the tests
look in .cache/cuda/lib (QLORA_CUDA_LIBRARY_PATH overrides), and `make test` sets QLORA_REQUIRE_NVRTC=1 so that a missing
compiler fails CI instead of skipping the kernel compilation tests. Nothing here needs a GPU or a CUDA driver.
"""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

# The pinned-wheel download and sha256 check shared with the dataset fetcher.
from fetch_datasets import FetchError, ensure_wheel

ROOT = Path(__file__).resolve().parent.parent
LIB_DIR = ROOT / ".cache" / "cuda" / "lib"

WHEEL = {
    "requirement": "nvidia-cuda-nvrtc==13.0.88",
    "filename": "nvidia_cuda_nvrtc-13.0.88-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl",
    "sha256": "ad9b6d2ead2435f11cbb6868809d2adeeee302e9bb94bcf0539c7a40d80e8575",
}
MEMBERS = ["nvidia/cu13/lib/libnvrtc.so.13", "nvidia/cu13/lib/libnvrtc-builtins.so.13.0"]


def ensure_libraries(whl: Path) -> None:
    LIB_DIR.mkdir(parents=True, exist_ok=True)
    stamp = LIB_DIR / ".wheel-sha256"
    targets = [LIB_DIR / Path(m).name for m in MEMBERS]
    if stamp.exists() and stamp.read_text().strip() == WHEEL["sha256"] and all(t.exists() for t in targets):
        print(f"[nvrtc] {LIB_DIR.relative_to(ROOT)}: present")
        return
    with zipfile.ZipFile(whl) as zf:
        for member, target in zip(MEMBERS, targets):
            tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
            try:
                with zf.open(member) as src, open(tmp, "wb") as dst:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        dst.write(chunk)
                os.replace(tmp, target)
            except KeyError:
                raise FetchError(f"{member} not found in {whl.name}") from None
            finally:
                if tmp.exists():
                    tmp.unlink()
    stamp.write_text(WHEEL["sha256"] + "\n")
    print(f"[nvrtc] extracted {', '.join(t.name for t in targets)} to {LIB_DIR.relative_to(ROOT)}")


def main() -> int:
    try:
        ensure_libraries(ensure_wheel(WHEEL))
    except FetchError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
