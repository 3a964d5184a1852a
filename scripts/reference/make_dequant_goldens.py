#!/usr/bin/env python3
"""Golden blocks and outputs for the GGUF dequantizer tests (Tests/QLoRAFormatsTests/GGUFDequant*.swift).

For each type it writes, under OUT_DIR (default Tests/QLoRAFormatsTests/Fixtures/dequant):
  <TYPE>.blocks  raw block bytes exactly as stored in a GGUF tensor (little-endian)
  <TYPE>.f32     gguf.quants.dequantize(blocks) as little-endian float32
  manifest.json  {type: {"blocks": n, "elements": n}}

Blocks come from gguf.quants.quantize on several distributions (weights-like, wide, constant, all-zero,
outliers, tiny values) where gguf-py can quantize the type, plus hand-crafted raw blocks with edge values
(zero / negative / subnormal / max f16 scales, all-0x00 and all-0xFF nibbles, random bytes). K-quants
have no quantizer in gguf-py, so their blocks are random bytes with finite f16 scales plus crafted ones.
F32/F16/BF16 cover random bit patterns including Inf, NaN payloads, subnormals and -0.

Usage (with .venv-ref, gguf==0.19.0 and numpy):
  make_dequant_goldens.py [OUT_DIR]
  make_dequant_goldens.py --smollm2 models/SmolLM2-135M-Instruct.Q4_1.gguf
      prints the values and checksums used by GGUFDequantSmolLM2Tests.swift
"""
import json
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

SEED = 20240611


def f16_bytes(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float16).view(np.uint8).reshape(-1, 2)


def quantized_rows(rng: np.random.Generator, n_blocks: int) -> np.ndarray:
    """n_blocks × 32 float32 inputs with a spread of shapes."""
    rows = []
    kinds = ["weights", "unit", "wide", "zero", "const+", "const-", "outlier", "tiny", "positive", "negative"]
    for i in range(n_blocks):
        k = kinds[i % len(kinds)]
        if k == "weights":
            x = rng.normal(0, 0.02, 32)
        elif k == "unit":
            x = rng.normal(0, 1, 32)
        elif k == "wide":
            x = rng.uniform(-3000, 3000, 32)
        elif k == "zero":
            x = np.zeros(32)
        elif k == "const+":
            x = np.full(32, 0.75)
        elif k == "const-":
            x = np.full(32, -1.5)
        elif k == "outlier":
            x = rng.normal(0, 0.1, 32)
            x[rng.integers(32)] = 40.0 * (1 if rng.random() < 0.5 else -1)
        elif k == "tiny":
            x = rng.normal(0, 1e-6, 32)
        elif k == "positive":
            x = rng.uniform(0.5, 2.0, 32)
        else:
            x = rng.uniform(-2.0, -0.5, 32)
        rows.append(x)
    return np.asarray(rows, dtype=np.float32)


# Edge f16 scales: zero, -0, negative, tiny subnormal, smallest normal, max, 1.
EDGE_SCALES = [0.0, -0.0, -0.0123, 6e-8, 6.1035e-05, 65504.0, -65504.0, 1.0, -1.0, 0.5]


def crafted_32(rng: np.random.Generator, qtype: T) -> np.ndarray:
    """Raw blocks with edge scales and edge nibble patterns for the 32-element types."""
    _, size = GGML_QUANT_SIZES[qtype]
    header = {T.Q4_0: 2, T.Q4_1: 4, T.Q5_0: 2, T.Q5_1: 4, T.Q8_0: 2}[qtype]
    blocks = []
    for i, d in enumerate(EDGE_SCALES):
        for fill in (0x00, 0xFF, None):
            b = np.empty(size, dtype=np.uint8)
            b[:] = rng.integers(0, 256, size, dtype=np.uint8) if fill is None else fill
            b[0:2] = f16_bytes([d])[0]
            if header == 4:  # m: alternate negative / positive / zero
                b[2:4] = f16_bytes([[-3.25, 0.0, 7.5][(i + (fill or 0)) % 3]])[0]
            blocks.append(b)
    return np.asarray(blocks, dtype=np.uint8)


def random_k(rng: np.random.Generator, qtype: T, n_random: int) -> np.ndarray:
    """Random K-quant blocks with finite f16 d (and dmin), plus crafted ones."""
    _, size = GGML_QUANT_SIZES[qtype]
    d_offsets = {T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}[qtype]
    blocks = []
    for _ in range(n_random):
        b = rng.integers(0, 256, size, dtype=np.uint8)
        for off in d_offsets:
            b[off:off + 2] = f16_bytes([rng.normal(0, 0.01)])[0]
        blocks.append(b)
    for i, d in enumerate(EDGE_SCALES):
        fill = [0x00, 0xFF, None][i % 3]
        b = np.empty(size, dtype=np.uint8)
        b[:] = rng.integers(0, 256, size, dtype=np.uint8) if fill is None else fill
        b[d_offsets[0]:d_offsets[0] + 2] = f16_bytes([d])[0]
        if len(d_offsets) == 2:
            b[2:4] = f16_bytes([EDGE_SCALES[(i + 3) % len(EDGE_SCALES)]])[0]
        if qtype == T.Q6_K and fill is None:
            b[192:208] = np.array([-128, 127, 0, -1, 1, -64, 63, -128,
                                   127, -128, 5, -5, 100, -100, 0, 1], dtype=np.int8).view(np.uint8)
        blocks.append(b)
    return np.asarray(blocks, dtype=np.uint8)


def scalar_patterns(rng: np.random.Generator, qtype: T) -> np.ndarray:
    if qtype == T.F32:
        special = np.array([0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001,
                            0xFFC12345, 0x00000001, 0x807FFFFF, 0x7F7FFFFF, 0x3F800000], dtype=np.uint32)
        bits = np.concatenate([special, rng.integers(0, 2**32, 1024 - len(special), dtype=np.uint32)])
        return bits.view(np.uint8).reshape(-1, 4)
    special = np.array([0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE01, 0x7FFF, 0x0001, 0x8001,
                        0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0x3555, 0x7F80, 0xFF80, 0x7FC0, 0x0080,
                        0x007F], dtype=np.uint16)
    bits = np.concatenate([special, rng.integers(0, 2**16, 2048 - len(special), dtype=np.uint16)])
    return bits.view(np.uint8).reshape(-1, 2)


def golden_blocks(qtype: T, rng: np.random.Generator) -> np.ndarray:
    if qtype in (T.F32, T.F16, T.BF16):
        return scalar_patterns(rng, qtype)
    if qtype in (T.Q4_K, T.Q5_K, T.Q6_K):
        return random_k(rng, qtype, 6)
    q = quantize(quantized_rows(rng, 34), qtype).reshape(-1, GGML_QUANT_SIZES[qtype][1])
    return np.concatenate([q, crafted_32(rng, qtype)], axis=0)


def reference_dequantize(blocks: np.ndarray, qtype: T) -> np.ndarray:
    if qtype == T.F16:
        return blocks.reshape(-1).view(np.float16).astype(np.float32)
    if qtype == T.F32:
        return blocks.reshape(-1).view(np.float32).copy()
    return dequantize(blocks, qtype).astype(np.float32, copy=False).reshape(-1)


def write_goldens(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    manifest = {}
    types = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K]
    for i, qtype in enumerate(types):
        rng = np.random.default_rng(SEED + i)
        blocks = np.ascontiguousarray(golden_blocks(qtype, rng), dtype=np.uint8)
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        assert blocks.shape[1] == type_size, (qtype.name, blocks.shape)
        out = reference_dequantize(blocks, qtype)
        assert out.size == blocks.shape[0] * block_size
        if qtype not in (T.F32, T.F16, T.BF16):
            assert np.isfinite(out).all(), qtype.name
        with open(os.path.join(out_dir, f"{qtype.name}.blocks"), "wb") as f:
            f.write(blocks.tobytes())
        with open(os.path.join(out_dir, f"{qtype.name}.f32"), "wb") as f:
            f.write(out.astype("<f4").tobytes())
        manifest[qtype.name] = {"blocks": int(blocks.shape[0]), "elements": int(out.size)}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print(json.dumps(manifest))


def checksums(x: np.ndarray) -> tuple[int, int]:
    """(Σ bits, Σ (i+1)·bits) over the float32 bit patterns, both mod 2^64."""
    bits = np.ascontiguousarray(x, dtype=np.float32).reshape(-1).view(np.uint32).astype(np.uint64)
    idx = np.arange(1, bits.size + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return int(bits.sum(dtype=np.uint64)), int((bits * idx).sum(dtype=np.uint64))


def smollm2(path: str) -> None:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    n_head, n_head_kv = 9, 3
    for name in ["blk.0.attn_q.weight", "token_embd.weight", "blk.0.attn_k.weight", "output_norm.weight"]:
        t = tensors[name]
        x = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
        ne0 = int(t.shape[0])
        x = x.reshape(-1, ne0)
        print(f"// {name}: {t.tensor_type.name} ne {list(map(int, t.shape))} -> [{x.shape[0]}, {x.shape[1]}]")
        picks = [(0, 0), (0, 1), (0, ne0 - 1), (1, 0), (x.shape[0] // 2, ne0 // 3), (x.shape[0] - 1, ne0 - 1),
                 (7, 100), (x.shape[0] - 2, 17)]
        for r, c in dict.fromkeys((max(0, min(r, x.shape[0] - 1)), c) for r, c in picks):
            print(f"//   [{r}, {c}] = 0x{int(x[r, c].view(np.uint32)):08X}  ({x[r, c]!r})")
        s1, s2 = checksums(x)
        print(f"//   checksums {s1} {s2}")
        if name in ("blk.0.attn_q.weight", "blk.0.attn_k.weight"):
            heads = n_head if "attn_q" in name else n_head_kv
            rows = x.shape[0]
            hf = x.reshape(heads, rows // heads // 2, 2, ne0).swapaxes(1, 2).reshape(rows, ne0)
            s1, s2 = checksums(hf)
            print(f"//   unpermuted checksums {s1} {s2}; hf[1, 0] = 0x{int(hf[1, 0].view(np.uint32)):08X}")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--smollm2":
        smollm2(sys.argv[2])
    else:
        here = os.path.dirname(os.path.abspath(__file__))
        default = os.path.join(here, "..", "..", "Tests", "QLoRAFormatsTests", "Fixtures", "dequant")
        write_goldens(os.path.normpath(sys.argv[1] if len(sys.argv) > 1 else default))
