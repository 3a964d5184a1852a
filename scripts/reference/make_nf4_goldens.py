#!/usr/bin/env python3
"""Golden NF4 / FP4 (+ double quantization) fixtures from the real bitsandbytes CPU build, for the Swift
NF4 quantizer / dequantizer / checkpoint tests (spec: /work/shared/spec/nf4-and-double-quant.md).

Usage (from the repository root; needs the torch reference venv, see scripts/reference/setup_torch_venv.sh):

    .venv-torch/bin/python scripts/reference/make_nf4_goldens.py [OUT_DIR]
        writes one <case>.safetensors per case plus README.md under OUT_DIR
        (default Tests/QLoRACoreTests/Fixtures/nf4); every case is also cross-checked against the
        pure-numpy emulations below (bytes, absmax, nested absmax, dequantized values)
    .venv-torch/bin/python scripts/reference/make_nf4_goldens.py --verify [--n 1048576]
        the empirical study of the CPU rules (8-bit nested step, 4-bit step, offset = mean) against
        bitsandbytes.functional.quantize_blockwise / quantize_4bit on ~1e6 random inputs; prints a report

Every fixture file holds (safetensors, written by our own deterministic writer: header keys sorted,
tensors ordered by (itemsize desc, name), header padded with spaces to a multiple of 8):
  input          the original tensor (its dtype and shape)
  packed         U8 [(n+1)/2, 1]   quantize_4bit output, as returned
  absmax         F32 [nblocks]     (no double quant) the block absmax as stored
  absmax_q       U8  [nblocks]     (double quant) the 8-bit indices bitsandbytes stores as `absmax`
  nested_absmax  F32 [ceil(nblocks/256)]   (double quant)
  nested_code    F32 [256]         (double quant) the signed dynamic map D (`nested_quant_map`)
  offset         F32 [1]           (double quant) mean(absmax)
  quant_map      F32 [16]          the 4-bit code table bitsandbytes stores as `quant_map`
  dequant        dequantize_4bit(packed, state) in the original dtype, reshaped to the original shape
  __metadata__   quant_type, blocksize, double_quant ("true"/"false"), dtype, shape (JSON list),
                 quant_state_json (the exact bytes of QuantState.as_dict(packed=True)
                 ["quant_state.bitsandbytes__<qt>"], i.e. what Linear4bit saves), case, note,
                 dequant_native_shape (the shape dequantize_4bit really returned), versions

Deterministic: fixed seeds (per case: crc32 of the case name), one torch thread; running it twice gives
byte-identical files. The folder is written to a temporary sibling and swapped in at the end (atomic
enough for fixtures: a failed run leaves the previous fixtures untouched).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import bitsandbytes  # noqa: E402
import bitsandbytes.functional as BF  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "Tests" / "QLoRACoreTests" / "Fixtures" / "nf4"
GENERATOR = "scripts/reference/make_nf4_goldens.py"
PINNED = {"torch": "2.15.0", "bitsandbytes": "0.50.2", "safetensors": "0.8.0", "numpy": "2.4.6"}
VERSIONS = {k: version(k) for k in PINNED}
for _k, _v in PINNED.items():
    assert VERSIONS[_k].split("+")[0] == _v, f"{_k} {VERSIONS[_k]} != pinned {_v} (use .venv-torch)"

f32 = np.float32
CPU = torch.device("cpu")


def _hexf(*hexes: int) -> np.ndarray:
    return np.array(hexes, dtype=np.uint32).view(np.float32)


# ================================================================================================ tables

NF4 = _hexf(0xBF800000, 0xBF3239B1, 0xBF066B30, 0xBECA32A0, 0xBE91A24D, 0xBE3D353F, 0xBDBA7871, 0x00000000,
            0x3DA2FAFF, 0x3E24CAE3, 0x3E7C04DD, 0x3EAD033A, 0x3EE1A4B8, 0x3F1007AB, 0x3F3913B3, 0x3F800000)
# FP4 table as bitsandbytes' get_4bit_type("fp4") builds it (index = bit pattern). NOTE index 8 is +0.0 here
# (Python `-0` is the integer 0); the C++ CPU dequantizer's own table has -0.0f at index 8.
FP4 = _hexf(0x00000000, 0x3BAAAAAB, 0x3F2AAAAB, 0x3F800000, 0x3EAAAAAB, 0x3F000000, 0x3E2AAAAB, 0x3E800000,
            0x00000000, 0xBBAAAAAB, 0xBF2AAAAB, 0xBF800000, 0xBEAAAAAB, 0xBF000000, 0xBE2AAAAB, 0xBE800000)
# default backend: sorted position -> code (torch.argsort of FP4; 0 (+0) sorts before 8 (+0 too))
FP4_ORDER = np.array([11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3])
D_SHA256 = "e732639a65f497b4ad684bb166a4467708255edd5207757de8b8f0c7e1fda89c"  # spec section 6
ZERO_CLAMP = f32(1e-38)  # torch clamp(min=1e-38) in float32: 0x006CE3EE (subnormal)


def dynamic_map() -> np.ndarray:
    """D = create_dynamic_map(signed=True) as bitsandbytes uses it for the nested step (checked against spec)."""
    d = BF.create_dynamic_map().float().numpy().astype(f32)
    assert hashlib.sha256(d.astype("<f4").tobytes()).hexdigest() == D_SHA256
    return d


# ================================================================================================ emulations


def emulate_quantize_4bit(x: np.ndarray, blocksize: int, quant_type: str) -> tuple[np.ndarray, np.ndarray]:
    """bitsandbytes' default (pure torch) quantize_4bit, which is what runs on CPU. float32 throughout.

    x: flat float32 (bf16/fp16 inputs widened exactly). n = len(x), full = n - n % B.
      full block b:  absmax[b] = max|x|                     (STORED UNCLAMPED: an all-zero block stores 0.0)
                     inv = fl32(1 / max(absmax[b], c))      c = fl32(1e-38) = 0x006CE3EE
                     y = clamp(fl32(x * inv), -1, 1)
      partial last:  am = max(max|x|, c)                     (STORED CLAMPED: an all-zero tail stores c)
                     y = clamp(fl32(x / am), -1, 1)          (true division, no reciprocal)
      odd n: one y = 0.0 is appended (pad nibble = code of 0.0: 7 for nf4, 0 for fp4)
      code: s = #{k : bounds[k] < y} (torch.bucketize, right=False: ties -> lower);
            nf4: code = s;  fp4: code = FP4_ORDER[s] (bounds = midpoints of the SORTED fp4 table)
      packed byte k = code[2k] << 4 | code[2k+1]
    """
    x = np.asarray(x, f32).ravel()
    n = x.size
    full = n - n % blocksize
    a = np.abs(x[:full]).reshape(-1, blocksize).max(axis=1) if full else np.zeros(0, f32)
    y = np.clip(x[:full].reshape(-1, blocksize) * (f32(1.0) / np.maximum(a, ZERO_CLAMP))[:, None], f32(-1), f32(1))
    ys = [y.ravel()]
    absmax = [a]
    if n % blocksize:
        am = np.maximum(np.abs(x[full:]).max(), ZERO_CLAMP)
        absmax.append(np.array([am], f32))
        ys.append(np.clip(x[full:] / am, f32(-1), f32(1)))
    y = np.concatenate(ys).astype(f32)
    if n % 2:
        y = np.concatenate([y, np.zeros(1, f32)])
    if quant_type == "nf4":
        table = NF4
    else:
        table = FP4[FP4_ORDER]
    bounds = ((table[:-1] + table[1:]) / f32(2)).astype(f32)
    s = np.searchsorted(bounds, y, side="left")  # == count of bounds strictly below y
    code = s if quant_type == "nf4" else FP4_ORDER[s]
    code = code.astype(np.uint8)
    packed = ((code[0::2] << 4) | code[1::2]).astype(np.uint8).reshape(-1, 1)
    return packed, np.concatenate(absmax).astype(f32)


def emulate_cpu_8bit_lut(code: np.ndarray) -> np.ndarray:
    """The 65,536-entry table of csrc/cpu_ops.cpp build_quantize_lut, float32 arithmetic:
    mid[k] = fl32(0.5 * fl32(code[k] + code[k+1]))            k = 0..254
    val[i] = fl32(-1 + fl32(fl32(2 * i) / 65535))             i = 0..65535
    lut[i] = #{k : mid[k] < val[i]}                           (strict: a grid point ON a midpoint -> lower)
    (The table is the same if val/mid are computed in float64, checked.)"""
    code = np.asarray(code, f32)
    mid = (f32(0.5) * (code[:-1] + code[1:])).astype(f32)
    i = np.arange(65536).astype(f32)
    val = (f32(-1.0) + (f32(2.0) * i) / f32(65535.0)).astype(f32)
    return np.searchsorted(mid, val, side="left").astype(np.uint8)


def emulate_quantize_blockwise_cpu(c: np.ndarray, code: np.ndarray, blocksize: int = 256,
                                   lut: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """bitsandbytes quantize_blockwise on CPU (C++ quantize_cpu_impl, float32 input). Per block j:
    absmax[j] = max|c|                     (plain, incl. partial last block; an all-zero block stores 0.0)
    if absmax[j] == 0: every index = 0     (not the code of 0.0!)
    inv = fl32(1 / absmax[j])
    z   = clamp(fl32(c * inv), -1, 1)
    g   = trunc(fl32(fl32(fl32(z + 1) * 0.5) * 65535) + 0.5)    in 0..65535 (an FMA for the last *,+ gives
                                                              the same g for every float32 z, see report)
    q   = lut[g]                           (emulate_cpu_8bit_lut)"""
    if lut is None:
        lut = emulate_cpu_8bit_lut(code)
    c = np.asarray(c, f32).ravel()
    n = c.size
    nb = -(-n // blocksize)
    q = np.zeros(n, np.uint8)
    absmax = np.zeros(nb, f32)
    for j in range(nb):
        blk = c[j * blocksize:(j + 1) * blocksize]
        a = np.abs(blk).max()
        absmax[j] = a
        if a == 0:
            continue
        z = np.clip(blk * (f32(1.0) / a), f32(-1), f32(1)).astype(f32)
        t = ((z + f32(1.0)) * f32(0.5)).astype(f32)
        g = np.trunc((t * f32(65535.0)).astype(f32) + f32(0.5)).astype(np.int64)
        q[j * blocksize:(j + 1) * blocksize] = lut[g]
    return q, absmax


def mean_f64(a: np.ndarray) -> np.float32:
    """fl32(float64 sum / n). NOT always torch's float32 mean(): torch computes fl32(S / fl32(n)) where S is
    torch.sum's float32 cascade (vectorized, partly pairwise) sum, which differs from the exact sum in the
    last bit(s) for a fraction of inputs (see --verify). The offset is stored, so readers never recompute it."""
    return f32(np.asarray(a, np.float64).sum() / a.size)


def emulate_double_quant(absmax: np.ndarray, code: np.ndarray, offset: np.float32 | None = None):
    """offset = mean(absmax) (pass torch's value for bit-exactness); c = fl32(absmax - offset);
    (q, nested_absmax) = quantize_blockwise_cpu(c, 256)."""
    if offset is None:
        offset = mean_f64(absmax)
    q, nested = emulate_quantize_blockwise_cpu((absmax - offset).astype(f32), code, 256)
    return offset, q, nested


def emulate_dequantize(packed, absmax, quant_type, n, absmax_q=None, nested_absmax=None, code=None,
                       offset=None, blocksize=64, cpp_fp4_negzero=True) -> np.ndarray:
    """absmax' = fl32(fl32(D[q] * nested_absmax[b // 256]) + offset) if nested; out = fl32(T[code] * absmax'[i // B]).
    T = NF4 or FP4 (the C++ CPU path, used when shape[-1] is even, has -0.0 at FP4 index 8)."""
    if absmax_q is not None:
        absmax = ((code[absmax_q] * np.repeat(nested_absmax, 256)[:absmax_q.size]).astype(f32) + offset).astype(f32)
    p = packed.ravel()
    codes = np.empty(p.size * 2, np.uint8)
    codes[0::2] = p >> 4
    codes[1::2] = p & 15
    table = NF4.copy() if quant_type == "nf4" else FP4.copy()
    if quant_type == "fp4" and cpp_fp4_negzero:
        table[8] = f32(-0.0)
    return (table[codes[:n]] * np.repeat(absmax, blocksize)[:n]).astype(f32)


def to_dtype_bits(x: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """float32 -> bf16/fp16 with round-to-nearest-even, as raw bits (uint16), or the float32 bits."""
    x = np.asarray(x, f32)
    if dtype == torch.float32:
        return x.view(np.uint32)
    if dtype == torch.float16:
        return x.astype(np.float16).view(np.uint16)
    b = x.view(np.uint32).astype(np.uint64)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


def tensor_bits(t: torch.Tensor) -> np.ndarray:
    t = t.contiguous().reshape(-1)
    if t.dtype == torch.bfloat16 or t.dtype == torch.float16:
        return t.view(torch.int16).numpy().view(np.uint16)
    if t.dtype == torch.float32:
        return t.numpy().view(np.uint32)
    return t.numpy()


# ================================================================================================ safetensors

_ST_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.uint8: "U8"}


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Deterministic safetensors writer (safetensors' own writer emits __metadata__ in hash order)."""
    names = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header: dict = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, off = [], 0
    for k in names:
        t = tensors[k].contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[k] = {"dtype": _ST_DTYPE[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ================================================================================================ cases


@dataclass
class Case:
    name: str
    shape: tuple
    dtype: torch.dtype
    blocksize: int
    gen: str
    combos: list = field(default_factory=lambda: [("nf4", False), ("nf4", True), ("fp4", False), ("fp4", True)])
    note: str = ""


def nf4_thresholds() -> np.ndarray:
    return ((NF4[:-1] + NF4[1:]) / f32(2)).astype(f32)


def make_input(case: Case) -> np.ndarray:
    """float64/float32 values (cast to the case dtype by torch afterwards)."""
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    n = int(np.prod(case.shape))
    g = case.gen
    if g == "normal":
        return rng.normal(0.0, 0.02, n)
    if g == "t2":
        return rng.standard_t(2, n) * 0.02
    if g == "special":
        # block 0 all zero; block 1 normal with one huge outlier; block 2 tiny (subnormal range, NaN-free:
        # absmax >= 2.94e-39 so 1/absmax is finite); block 3 mixed signs/constant; block 4 tiny normal-range;
        # the rest normal; the partial last block all zero.
        B = case.blocksize
        x = rng.normal(0.0, 0.02, n)
        x[0:B] = 0.0
        x[B:2 * B] = rng.normal(0.0, 0.02, B)
        x[B + 17] = 1.0e4
        x[2 * B:3 * B] = rng.uniform(-1, 1, B) * 5.0e-39
        x[2 * B + 3] = 6.0e-39
        x[3 * B:4 * B] = np.where(np.arange(B) % 2 == 0, 0.75, -0.75)
        x[4 * B:5 * B] = rng.normal(0.0, 1.0, B) * 1e-37
        full = n - n % B
        assert n % B != 0
        x[full:] = 0.0
        return x
    if g == "neg_outlier":
        x = rng.normal(0.0, 0.02, n)
        x[rng.integers(0, n, 3)] = [-7.5, 3.0, -0.9]
        return x
    if g == "T1":
        return np.tile(2.0 * NF4.astype(np.float64), 4)
    if g in ("T2", "T2up"):
        t = nf4_thresholds()
        if g == "T2up":
            t = np.nextafter(t, f32(np.inf)).astype(f32)
        return np.concatenate([[1.0], t.astype(np.float64), np.zeros(48)])
    if g == "T3":
        return np.array([f32((2 * i - 63) / 63) for i in range(64)], np.float64)
    if g == "T4":
        return np.array([1.0, -1.0, 0.5])
    if g == "T5":
        x = np.zeros(64)
        x[:4] = [0.5, -0.25, 0.125, -1.5]
        return x
    if g == "T6":
        x = np.zeros(192)
        x[0], x[64], x[128] = 1.0, -2.0, 3.0
        return x
    if g == "T7":
        x = np.zeros(128)
        x[0], x[64] = 1.0, -1.0
        return x
    if g == "T9":
        return np.zeros(64)
    raise ValueError(g)


NF4_ONLY = [("nf4", False)]
CASES = [
    Case("T1_exact_codes", (4, 16), torch.float32, 64, "T1", NF4_ONLY, "spec T1: 2*NF4[j], j=0..15, x4"),
    Case("T2_ties", (1, 64), torch.float32, 64, "T2", NF4_ONLY, "spec T2: [1, t_0..t_14, 0...]: ties -> lower code"),
    Case("T2_ties_up", (1, 64), torch.float32, 64, "T2up", NF4_ONLY, "spec T2: thresholds + 1 ulp -> upper code"),
    Case("T3_ramp", (1, 64), torch.float32, 64, "T3", NF4_ONLY, "spec T3: (2i-63)/63"),
    Case("T4_odd", (3,), torch.float32, 64, "T4", NF4_ONLY, "spec T4: [1, -1, 0.5] -> F0 C7 (1-D, odd n)"),
    Case("T5_bf16", (1, 64), torch.bfloat16, 64, "T5", NF4_ONLY, "spec T5: bf16 row"),
    Case("T6_double_quant", (192,), torch.float32, 64, "T6", [("nf4", True)], "spec T6: absmax [1,2,3]"),
    Case("T7_degenerate_nested", (128,), torch.float32, 64, "T7", [("nf4", True)], "spec T7: nested_absmax 0"),
    Case("T9_zero_block", (64,), torch.float32, 64, "T9", [("nf4", False), ("fp4", False)], "spec T9: 64 zeros"),
    Case("normal_33x70_f32_bs64", (33, 70), torch.float32, 64, "normal",
         note="partial last block (2310 = 36*64 + 6)"),
    Case("normal_7x33_bf16_bs32", (7, 33), torch.bfloat16, 32, "normal",
         note="odd element count 231, odd last dim (torch dequant path), partial block of 7"),
    Case("t2_64x96_f16_bs128", (64, 96), torch.float16, 128, "t2", note="student-t df=2 heavy tails"),
    Case("normal_16x300_f32_bs256", (16, 300), torch.float32, 256, "normal",
         [("nf4", False), ("nf4", True)], "partial last block (4800 = 18*256 + 192)"),
    Case("outlier_3x4000_bf16_bs4096", (3, 4000), torch.bfloat16, 4096, "neg_outlier",
         [("nf4", False), ("nf4", True), ("fp4", False)], "blocksize 4096, 2 full + partial 3808"),
    Case("special_9x60_f32_bs64", (9, 60), torch.float32, 64, "special",
         note="zero block, 1e4 outlier, subnormal block (absmax 6e-39), +-0.75 block, 1e-37 block, "
              "all-zero partial last block (stored absmax 1e-38)"),
    Case("special_5x205_f16_bs32", (5, 205), torch.float16, 32, "special",
         [("nf4", False), ("nf4", True)],
         note="fp16 version of special (subnormal block flushes to 0 in fp16), odd n=1025, partial last 1"),
    Case("nested_100x250_f16_bs32", (100, 250), torch.float16, 32, "normal",
         [("nf4", True), ("fp4", True)], "782 blocks -> 4 nested blocks, last nested block partial (14)"),
    Case("nested_128x512_bf16_bs64", (128, 512), torch.bfloat16, 64, "t2",
         [("nf4", True)], "1024 blocks -> 4 full nested blocks (QLoRA default config)"),
]


def quant_state_json(state) -> tuple[str, str]:
    d = state.as_dict(packed=True)
    keys = [k for k in d if k.startswith("quant_state.bitsandbytes__")]
    assert len(keys) == 1
    return keys[0], bytes(d[keys[0]].numpy().tolist()).decode("utf-8")


def run_case(case: Case, qt: str, dq: bool):
    """Real bitsandbytes, then the emulation cross-check. Returns (tensors, metadata)."""
    raw = make_input(case)
    x = torch.from_numpy(np.asarray(raw, np.float64)).to(case.dtype).reshape(case.shape)
    assert torch.isfinite(x).all()
    packed, state = BF.quantize_4bit(x, blocksize=case.blocksize, compress_statistics=dq, quant_type=qt)
    deq = BF.dequantize_4bit(packed, state)
    native_shape = list(deq.shape)
    deq = deq.reshape(case.shape)
    assert deq.dtype == case.dtype and torch.isfinite(deq).all()
    key, js = quant_state_json(state)
    assert key.endswith(qt)
    assert json.loads(js)["shape"] == list(case.shape)

    # ---- emulation cross-check
    xf = x.float().reshape(-1).numpy()
    n = xf.size
    e_packed, e_absmax = emulate_quantize_4bit(xf, case.blocksize, qt)
    assert packed.dtype == torch.uint8 and list(packed.shape) == [(n + 1) // 2, 1]
    assert np.array_equal(packed.numpy(), e_packed), (case.name, qt, dq, "packed")
    tensors = {"input": x.contiguous(), "packed": packed.contiguous(), "dequant": deq.contiguous(),
               "quant_map": state.code.float().contiguous()}
    D = None
    if dq:
        D = dynamic_map()
        assert state.offset.dtype == torch.float32
        t_off = f32(state.offset.item())
        t_sum = f32(torch.from_numpy(e_absmax).sum().item())
        assert t_off.view(np.uint32) == f32(t_sum / f32(e_absmax.size)).view(np.uint32), (case.name, "offset")
        offset_f64 = mean_f64(e_absmax)
        offset, q, nested = emulate_double_quant(e_absmax, D, t_off)
        assert np.array_equal(state.absmax.numpy(), q), (case.name, qt, "absmax_q")
        assert np.array_equal(state.state2.absmax.numpy().view(np.uint32), nested.view(np.uint32))
        assert np.array_equal(state.state2.code.numpy().view(np.uint32), D.view(np.uint32))
        assert state.state2.blocksize == 256
        tensors.update({"absmax_q": state.absmax.contiguous(), "nested_absmax": state.state2.absmax.contiguous(),
                        "nested_code": state.state2.code.float().contiguous(),
                        "offset": state.offset.reshape(1).float().contiguous()})
        e_deq = emulate_dequantize(e_packed, None, qt, n, q, nested, D, offset, case.blocksize,
                                   cpp_fp4_negzero=case.shape[-1] % 2 == 0)
    else:
        assert np.array_equal(state.absmax.numpy().view(np.uint32), e_absmax.view(np.uint32)), (case.name, "absmax")
        tensors["absmax"] = state.absmax.contiguous()
        e_deq = emulate_dequantize(e_packed, e_absmax, qt, n, blocksize=case.blocksize,
                                   cpp_fp4_negzero=case.shape[-1] % 2 == 0)
    assert np.array_equal(tensor_bits(deq), to_dtype_bits(e_deq, case.dtype)), (case.name, qt, dq, "dequant")

    meta = {
        "case": case.name, "note": case.note, "quant_type": qt, "blocksize": str(case.blocksize),
        "double_quant": "true" if dq else "false", "dtype": str(case.dtype).removeprefix("torch."),
        "shape": json.dumps(list(case.shape)), "quant_state_json": js,
        "dequant_native_shape": json.dumps(native_shape), "generator": GENERATOR,
        **({"offset_equals_f64_mean": "true" if offset_f64.view(np.uint32) == offset.view(np.uint32) else
            f"false (float64-accumulated mean would be {float(offset_f64)!r})"} if dq else {}),
        "versions": json.dumps(VERSIONS, sort_keys=True),
    }
    return tensors, meta


def file_name(case: Case, qt: str, dq: bool) -> str:
    return f"{case.name}__{qt}_{'dq' if dq else 'nodq'}.safetensors"


README_HEAD = """# NF4 / FP4 golden fixtures

Generated by `{gen}` (do not edit by hand) from the real bitsandbytes CPU build:
`bitsandbytes.functional.quantize_4bit` / `dequantize_4bit`, with and without
`compress_statistics` (double quantization). Versions: {versions}.
Regenerate with `.venv-torch/bin/python {gen}` (deterministic, byte-identical).
Spec: `/work/shared/spec/nf4-and-double-quant.md`.

One safetensors file per (case, quant type, double quant). Tensors:

| name | dtype | shape | content |
|---|---|---|---|
| `input` | F32/BF16/F16 | original | the quantized tensor |
| `packed` | U8 | `[(n+1)/2, 1]` | packed 4-bit codes, high nibble first |
| `absmax` | F32 | `[nblocks]` | block absmax (only without double quant) |
| `absmax_q` | U8 | `[nblocks]` | 8-bit indices stored as `weight.absmax` (double quant) |
| `nested_absmax` | F32 | `[ceil(nblocks/256)]` | double quant |
| `nested_code` | F32 | `[256]` | dynamic map D = `nested_quant_map` (double quant) |
| `offset` | F32 | `[1]` | `nested_offset` (double quant) |
| `quant_map` | F32 | `[16]` | the 4-bit code table bitsandbytes stores |
| `dequant` | original | original | `dequantize_4bit` output (reshaped to the original shape) |

Metadata (`__metadata__`): `quant_type`, `blocksize`, `double_quant` ("true"/"false"), `dtype`, `shape`
(JSON list), `quant_state_json` (exact bytes of `QuantState.as_dict(packed=True)` under
`quant_state.bitsandbytes__<qt>`, what `Linear4bit` saves), `dequant_native_shape` (what
`dequantize_4bit` returned: `[1, n]` for a 1-D shape with even n, the C++ path quirk), `case`, `note`,
`generator`, `versions`.

CPU-build details the Swift tests must expect (all verified by the generator's emulation cross-check):

- Quantize (pure-torch default backend): full block `y = fl32(x * fl32(1/max(absmax, 1e-38f)))`, partial
  last block `y = fl32(x / max(absmax, 1e-38f))` (true division); codes by `bucketize` on float32 midpoints,
  ties to the lower code. Stored absmax: full all-zero block 0.0, all-zero PARTIAL last block
  `fl32(1e-38)` = 0x006CE3EE (clamped). All-zero blocks encode code 7 (nf4, byte 0x77) / 0 (fp4).
- FP4 on CPU: tiny positive values map to code 8 (0b1000), tiny negative values and 0 to code 0; the odd-n
  pad nibble is 7 (nf4) / 0 (fp4). FP4 code 8 dequantizes to -0.0 on the C++ path (even last dim) and to
  +0.0 on the torch path (odd last dim): compare dequantized zeros without their sign.
- Double quant on CPU: `offset = mean(absmax)`; the nested 8-bit step is the C++ 65,536-point LUT rule
  (not the CUDA nearest/ties-even rule), and an all-zero nested block stores nested_absmax 0 and indices 0.
  Dequant: `absmax' = fl32(fl32(D[q] * nested_absmax[b/256]) + offset)`, `out = fl32(T[code] * absmax')`,
  then round-to-nearest-even to bf16/fp16.

| file | shape | dtype | B | quant | dq | blocks | nested | bytes | note |
|---|---|---|---:|---|---|---:|---:|---:|---|
"""


def write_goldens(out_dir: Path) -> None:
    torch.manual_seed(0)
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", suffix=".tmp", dir=out_dir.parent))
    try:
        rows = []
        for case in CASES:
            for qt, dq in case.combos:
                tensors, meta = run_case(case, qt, dq)
                fn = file_name(case, qt, dq)
                write_safetensors(tmp / fn, tensors, meta)
                back = load_file(str(tmp / fn))
                assert set(back) == set(tensors)
                for k, v in tensors.items():
                    assert back[k].dtype == v.dtype and torch.equal(back[k].view(torch.uint8), v.view(torch.uint8))
                n = int(np.prod(case.shape))
                nb = -(-n // case.blocksize)
                rows.append(f"| `{fn}` | {list(case.shape)} | {meta['dtype']} | {case.blocksize} | {qt} | "
                            f"{'yes' if dq else 'no'} | {nb} | {-(-nb // 256) if dq else '-'} | "
                            f"{(tmp / fn).stat().st_size} | {case.note} |")
        readme = README_HEAD.format(gen=GENERATOR, versions=", ".join(f"{k} {v}" for k, v in sorted(VERSIONS.items())))
        (tmp / "README.md").write_text(readme + "\n".join(rows) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        if out_dir.exists():
            old = out_dir.with_name(out_dir.name + ".old.tmp")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = sum(p.stat().st_size for p in out_dir.iterdir())
    print(f"[done] {out_dir}: {len(rows)} fixtures, {total:,} bytes")


# ================================================================================================ --verify


def verify(n_total: int) -> None:
    rng = np.random.default_rng(20240611)
    D = dynamic_map()
    lut = emulate_cpu_8bit_lut(D)
    mids = ((D[:-1] + D[1:]) * f32(0.5)).astype(f32)

    def real8(x):
        q, st = BF.quantize_blockwise(torch.from_numpy(np.ascontiguousarray(x, f32)), blocksize=256)
        return q.numpy().ravel(), st.absmax.numpy()

    def cuda_rule(z):  # exact nearest entry, ties -> even index (spec section 5)
        d = np.abs(z[:, None].astype(np.float64) - D[None, :].astype(np.float64))
        best = d.min(1, keepdims=True)
        cand = d == best
        idx = np.where(cand.sum(1) > 1, np.argmax(cand & (np.arange(256) % 2 == 0), 1), d.argmin(1))
        return idx

    grid = (f32(-1.0) + (f32(2.0) * np.arange(65536).astype(f32)) / f32(65535.0)).astype(f32)
    gens = {
        "normal": lambda k: rng.normal(0, 1, k),
        "uniform": lambda k: rng.uniform(-1, 1, k),
        "student_t2": lambda k: rng.standard_t(2, k),
        "lognormal_signed": lambda k: rng.lognormal(0, 3, k) * rng.choice([-1, 1], k),
        "subnormal": lambda k: rng.normal(0, 1e-38, k),
        "absmax_minus_mean": lambda k: np.abs(rng.normal(0, 0.02, k)) - 0.016,
        "grid_points": lambda k: grid[rng.integers(0, 65536, k)],
        "code_values": lambda k: D[rng.integers(0, 256, k)],
        "code_midpoints": lambda k: mids[rng.integers(0, 255, k)],
        "sparse": lambda k: rng.normal(0, 1, k) * (rng.random(k) < 0.05),
    }
    per = n_total // len(gens)
    stats = {"n": 0, "bytes_mismatch": 0, "absmax_mismatch": 0, "diff_vs_cuda_rule": 0}
    print("== 8-bit nested step: quantize_blockwise(float32, blocksize=256) on CPU vs LUT emulation")
    for name, g in gens.items():
        k = per + 77  # not a multiple of 256: partial last block
        x = g(k).astype(f32)
        if name in ("grid_points", "code_values", "code_midpoints"):
            x[::256] = 1.0  # absmax 1 -> z == x exactly
        q, am = real8(x)
        e, eam = emulate_quantize_blockwise_cpu(x, D, 256, lut)
        bad = int((q != e).sum())
        zs = np.concatenate([np.clip(x[j:j + 256] * (f32(1) / max(np.abs(x[j:j + 256]).max(), f32(1e-45))), -1, 1)
                             for j in range(0, x.size, 256)]).astype(f32)
        nz = np.repeat(eam > 0, 256)[:x.size]
        cu = int((cuda_rule(zs[nz][:50000]) != q[nz][:50000]).sum())
        stats["n"] += x.size
        stats["bytes_mismatch"] += bad
        stats["absmax_mismatch"] += int((am.view(np.uint32) != eam.view(np.uint32)).sum())
        stats["diff_vs_cuda_rule"] += cu
        print(f"  {name:18s} n={x.size:7d} mismatches={bad}  (differs from CUDA rule on {cu} of "
              f"{min(50000, int(nz.sum()))})")
    print("  total", stats)

    # targeted: z = x*(1/a) vs x/a; code[0] = -1 variant; all-zero block; z = 0
    okr = okd = tot = 0
    for _ in range(400):
        a = f32(rng.uniform(0.1, 10))
        x = (rng.uniform(-1, 1, 100000) * a).astype(f32)
        zr = np.clip(x * (f32(1) / a), -1, 1).astype(f32)
        zd = np.clip(x / a, -1, 1).astype(f32)
        gi = lambda z: np.trunc((((z + f32(1)) * f32(0.5)).astype(f32) * f32(65535)).astype(f32) + f32(0.5)).astype(int)
        sel = lut[gi(zr)] != lut[gi(zd)]
        if not sel.any():
            continue
        blk = np.concatenate([[a], x[sel][:255]]).astype(f32)
        q, _ = real8(blk)
        okr += int((q[1:] == lut[gi(zr[sel][:255])]).sum())
        okd += int((q[1:] == lut[gi(zd[sel][:255])]).sum())
        tot += blk.size - 1
    print(f"  recip-vs-div discriminating inputs: {tot}; matches x*(1/a): {okr}; matches x/a: {okd}")
    c1 = D.copy()
    c1[0] = -1.0
    lut1 = emulate_cpu_8bit_lut(c1)
    diff = np.nonzero(lut1 != lut)[0]
    z = grid[diff]
    blk = np.concatenate([[1.0], z[:255]]).astype(f32)
    q, _ = real8(blk)
    print(f"  code[0]=-1 variant differs on {diff.size} grid points; real matches ours on "
          f"{int((q[1:] == lut[diff[:255]]).sum())}/{min(255, diff.size)}, the variant on "
          f"{int((q[1:] == lut1[diff[:255]]).sum())}")
    q, am = real8(np.zeros(300, f32))
    print(f"  all-zero blocks: indices {sorted(set(q.tolist()))}, absmax {am.tolist()}")
    q, am = real8(np.array([0.0, 1.0, -1.0, 1e-6, -1e-6], f32))
    print(f"  z = [0, 1, -1, 1e-6, -1e-6] -> {q.tolist()} (CUDA rule: [127, 255, 0, 127, 127])")

    print("== 4-bit step: quantize_4bit on CPU (default torch backend) vs emulation")
    bad4 = tot4 = 0
    for it in range(60):
        qt = ("nf4", "fp4")[it % 2]
        bs = (32, 64, 128, 256, 512, 1024, 2048, 4096)[it % 8]
        dt = (torch.float32, torch.bfloat16, torch.float16)[it % 3]
        k = int(rng.integers(1, 20000))
        kind = it % 5
        x = [rng.normal(0, 0.02, k), rng.standard_t(2, k), rng.uniform(-1, 1, k) * 1e-38,
             rng.normal(0, 1, k) * (rng.random(k) < 0.1), np.round(rng.normal(0, 4, k)) / 4][kind]
        xt = torch.from_numpy(x).to(dt)
        if dt == torch.float32 and kind == 2:
            xt[: min(k, bs)] = 0  # all-zero first block
        packed, st = BF.quantize_4bit(xt, blocksize=bs, quant_type=qt)
        ep, ea = emulate_quantize_4bit(xt.float().numpy(), bs, qt)
        b = int((packed.numpy() != ep).sum()) + int((st.absmax.numpy().view(np.uint32) != ea.view(np.uint32)).sum())
        bad4 += b
        tot4 += k
    print(f"  {tot4} elements over 60 random tensors: mismatches {bad4}")
    for k, bs in ((64, 64), (100, 64)):
        _, st = BF.quantize_4bit(torch.zeros(k), blocksize=bs, quant_type="nf4")
        print(f"  all-zero n={k} B={bs}: stored absmax bits {[hex(v) for v in st.absmax.numpy().view(np.uint32)]}")
    # reciprocal-multiply vs true division, for a full block (B=64, n=64) and a partial block (B=128, n=64):
    # candidates x = fl32(t_k * a) +- a few ulps, kept where the two formulas pick different codes
    bnds = nf4_thresholds()
    for label, bs in (("full block (B=64)", 64), ("partial block (B=128)", 128)):
        agree_r = agree_d = tot = 0
        for _ in range(3000):
            a = f32(rng.uniform(0.3, 3))
            cand = (bnds[rng.integers(0, 15, 63)] * a).astype(f32)
            cand = (cand.view(np.int32) + rng.integers(-3, 4, 63).astype(np.int32)).view(f32)
            cand = np.clip(cand, -a, a)
            yr = np.clip(cand * (f32(1) / a), -1, 1).astype(f32)
            yd = np.clip(cand / a, -1, 1).astype(f32)
            if (np.searchsorted(bnds, yr) == np.searchsorted(bnds, yd)).all():
                continue
            x = np.concatenate([[a], cand]).astype(f32)
            p, _ = BF.quantize_4bit(torch.from_numpy(x), blocksize=bs, quant_type="nf4")
            codes = np.stack([p.numpy().ravel() >> 4, p.numpy().ravel() & 15], 1).ravel()[1:]
            sel = np.searchsorted(bnds, yr) != np.searchsorted(bnds, yd)
            tot += int(sel.sum())
            agree_r += int((codes[sel] == np.searchsorted(bnds, yr)[sel]).sum())
            agree_d += int((codes[sel] == np.searchsorted(bnds, yd)[sel]).sum())
        print(f"  {label}: {tot} discriminating values; match x*(1/a): {agree_r}, match x/a: {agree_d}")

    print("== offset: torch float32 mean() vs fl32(float64 sum / n) and vs fl32(torch.sum() / n)")
    mism = cnt = mism_sum = 0
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for _ in range(1500):
            k = int(rng.integers(1, 300000)) if rng.random() < 0.3 else int(rng.integers(1, 3000))
            a = np.abs(rng.standard_t(3, k) * rng.uniform(1e-3, 10)).astype(f32)
            tm = f32(torch.from_numpy(a).mean().item())
            cnt += 1
            mism += int(tm.view(np.uint32) != mean_f64(a).view(np.uint32))
            ts = f32(torch.from_numpy(a).sum().item())
            mism_sum += int(tm.view(np.uint32) != f32(ts / f32(k)).view(np.uint32))
    torch.set_num_threads(1)
    print(f"  {cnt} vectors (threads 1 and 2): differs from f64 mean in {mism}; "
          f"differs from fl32(torch.sum / n) in {mism_sum}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", nargs="?", default=str(DEFAULT_OUT))
    ap.add_argument("--verify", action="store_true", help="run the empirical CPU-rule study instead")
    ap.add_argument("--n", type=int, default=1 << 20, help="inputs for the 8-bit study (--verify)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.verify:
        verify(args.n)
    else:
        write_goldens(Path(args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
