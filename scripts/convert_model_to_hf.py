#!/usr/bin/env python3
"""Convert the SmolLM2-135M-Instruct GGUF into a float32 Hugging Face model directory.

Usage (from the repository root; needs the torch reference venv and the GGUF):

    scripts/reference/setup_torch_venv.sh             # .venv-torch: torch, transformers, gguf, ...
    python3 scripts/fetch_model.py                    # models/SmolLM2-135M-Instruct.Q4_1.gguf
    .venv-torch/bin/python scripts/convert_model_to_hf.py [--force]

Writes models/SmolLM2-135M-Instruct/ (git-ignored):
    config.json, generation_config.json   LlamaConfig as transformers builds it from the GGUF metadata
    model.safetensors                     every parameter in float32 (~538 MB; the tied LM head is not stored)
    tokenizer.json, tokenizer_config.json transformers' conversion of the GGUF tokenizer; the chat template is
                                          kept inside tokenizer_config.json (save_jinja_files=False)
    .source.json                          the GGUF's sha256, versions, and model.safetensors' sha256 (the stamp)
and prints the sha256 of model.safetensors.

How: `from_pretrained(models_dir, gguf_file=..., dtype=float32)` dequantizes Q4_1/Q8_0 to float32 (the legacy
GGUF loader un-permutes Q/K and yields plain nn.Linear / nn.Embedding weights). `save_pretrained` refuses a model
tagged "quantized with gguf", so after checking that every parameter and buffer is a plain dense float32 tensor
(no GGUF/packed modules), the quantization tag is dropped (shared/PEER.md). The dequantized weights ARE the
reference: no higher-precision original exists anywhere we can reach.

Tokenizer note: transformers' converted tokenizer.json uses a plain ByteLevel pre-tokenizer, while the GGUF says
`tokenizer.ggml.pre = smollm` (split each \\p{N} first). ASCII digits tokenize the same either way; non-ASCII
numerals differ. This directory keeps transformers' conversion unchanged.

Idempotent: when the output exists and its stamp names the same GGUF sha256 and the model.safetensors hash still
matches, nothing is rewritten (--force rewrites). Output is written to a temporary sibling and renamed into place.
Offline: HF_HUB_OFFLINE=1; nothing comes from a model hub.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
OUT_NAME = "SmolLM2-135M-Instruct"
EXPECTED_PARAMS = 134_515_008
STAMP = ".source.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def up_to_date(out: Path) -> str | None:
    stamp = out / STAMP
    st = out / "model.safetensors"
    if not (stamp.is_file() and st.is_file() and (out / "config.json").is_file() and (out / "tokenizer.json").is_file()):
        return None
    try:
        info = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    if info.get("gguf_sha256") != GGUF_SHA256:
        return None
    digest = sha256_file(st)
    return digest if digest == info.get("model_safetensors_sha256") else None


def check_plain(model) -> int:
    """Every parameter/buffer a plain dense float32 tensor, every module a stock torch/transformers one."""
    import torch

    bad = []
    n = 0
    for name, p in model.named_parameters():
        if type(p) is not torch.nn.Parameter or type(p.data) is not torch.Tensor:
            bad.append(f"{name}: {type(p).__name__}/{type(p.data).__name__}")
        elif p.dtype != torch.float32 or p.layout != torch.strided or p.device.type != "cpu" or p.is_quantized:
            bad.append(f"{name}: dtype {p.dtype} layout {p.layout} device {p.device}")
        elif not torch.isfinite(p).all():
            bad.append(f"{name}: non-finite values")
        n += p.numel()
    for name, b in model.named_buffers():
        if b.is_floating_point() and b.dtype != torch.float32:
            bad.append(f"buffer {name}: dtype {b.dtype}")
    for name, m in model.named_modules():
        if "gguf" in type(m).__name__.lower() or "ggml" in type(m).__name__.lower():
            bad.append(f"module {name}: {type(m).__name__}")
        if isinstance(m, torch.nn.Linear) and type(m) is not torch.nn.Linear:
            bad.append(f"module {name}: {type(m).__name__} is not a plain nn.Linear")
    if bad:
        raise SystemExit("[convert] not a plain float32 model:\n  " + "\n  ".join(bad[:20]))
    return n


def drop_quantization_tag(model) -> None:
    """What HfQuantizer.remove_quantization_config does: forget that the weights came from a GGUF."""
    for attr in ("hf_quantizer", "quantization_method", "_weight_conversions"):
        if hasattr(model, attr):
            delattr(model, attr)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False


def convert(gguf: Path, out: Path) -> str:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    transformers.utils.logging.disable_progress_bar()
    print(f"[convert] loading {gguf.relative_to(ROOT)} with transformers {transformers.__version__} (float32)")
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.eval()
    n = check_plain(model)
    if n != EXPECTED_PARAMS:
        raise SystemExit(f"[convert] {n} parameters, expected {EXPECTED_PARAMS}")
    if not model.config.tie_word_embeddings or model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        raise SystemExit("[convert] expected a tied LM head (SmolLM2 has no output.weight)")
    print(f"[convert] {type(model).__name__}: {n:,} float32 parameters, all plain tensors")
    drop_quantization_tag(model)
    model.config.dtype = torch.float32

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if not tok.chat_template:
        raise SystemExit("[convert] the GGUF tokenizer has no chat template")

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp, save_jinja_files=False)
    cfg = json.loads((tmp / "tokenizer_config.json").read_text())
    if "chat_template" not in cfg or (tmp / "chat_template.jinja").exists():
        raise SystemExit("[convert] chat_template did not land in tokenizer_config.json")
    if "quantization_config" in json.loads((tmp / "config.json").read_text()):
        raise SystemExit("[convert] config.json still carries a quantization_config")
    digest = sha256_file(tmp / "model.safetensors")

    from importlib.metadata import version

    os.chmod(tmp / "model.safetensors", 0o644)
    (tmp / STAMP).write_text(json.dumps({
        "gguf": GGUF_NAME,
        "gguf_sha256": GGUF_SHA256,
        "model_safetensors_sha256": digest,
        "model_safetensors_bytes": (tmp / "model.safetensors").stat().st_size,
        "parameters": n,
        "generator": "scripts/convert_model_to_hf.py",
        "versions": {name: version(name) for name in ("torch", "transformers", "tokenizers", "gguf", "safetensors")},
    }, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return digest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", type=Path, default=MODELS / GGUF_NAME)
    ap.add_argument("--out", type=Path, default=MODELS / OUT_NAME)
    ap.add_argument("--force", action="store_true", help="convert even when the output is up to date")
    args = ap.parse_args()
    gguf, out = args.gguf.resolve(), args.out.resolve()
    if not gguf.is_file():
        print(f"[convert] {gguf} is missing: run python3 scripts/fetch_model.py", file=sys.stderr)
        return 1
    if not args.force:
        digest = up_to_date(out)
        if digest:
            print(f"[convert] {out.relative_to(ROOT)} is up to date")
            print(f"model.safetensors sha256 {digest}")
            return 0
    got = sha256_file(gguf)
    if got != GGUF_SHA256:
        print(f"[convert] {gguf.name} has sha256 {got}, expected {GGUF_SHA256}", file=sys.stderr)
        return 1
    digest = convert(gguf, out)
    size = (out / "model.safetensors").stat().st_size
    print(f"[convert] wrote {out.relative_to(ROOT)}/ (model.safetensors {size:,} bytes)")
    print(f"model.safetensors sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
