#!/usr/bin/env python3
"""Interop check: a model prepared by `qlora prepare` (or the prepare stage) loads in transformers + bitsandbytes,
and its logits match qlora's NF4 forward. Optionally also checks the 4-bit bytes against bitsandbytes' own
quantization of the same fp32 source.

Usage (from the repository root, with the pinned reference venv):

    .venv-torch/bin/python scripts/reference/check_prepared_bnb.py PREPARED_DIR \\
        [--tokenizer Tests/QLoRATokenizerTests/Fixtures/smollm2] [--qlora .build/release/qlora] \\
        [--source models/SmolLM2-135M-Instruct]

Steps:
  1. `AutoModelForCausalLM.from_pretrained(PREPARED_DIR)` (CPU; bitsandbytes reads quantization_config and the
     `weight.quant_state.bitsandbytes__*` entries). Fails loudly if any projection did not load as Linear4bit.
  2. For each prompt: transformers' last-position logits (eager attention, float32 compute) vs
     `qlora logits --model PREPARED_DIR --json --top-k VOCAB` on the same ids; prints max |Δ| and the argmax.
  3. With --source (an fp32 HF directory, e.g. from scripts/convert_model_to_hf.py, prepared by qlora with
     `--nested-rounding bitsandbytes-cpu`): bitsandbytes.functional.quantize_4bit(compress_statistics=True) of each
     source projection vs the stored packed codes / 8-bit absmax codes / nested absmax, counting mismatches.
Exit status 0 when every logit difference is within --tolerance and (with --source) every byte matches.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "Question: What is 12 times 7?\nAnswer:",
    "Once upon a time, in a small village by the sea, there lived",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prepared")
    ap.add_argument("--tokenizer", default="Tests/QLoRATokenizerTests/Fixtures/smollm2")
    ap.add_argument("--qlora", default=".build/release/qlora")
    ap.add_argument("--source", default=None)
    ap.add_argument("--tolerance", type=float, default=2e-3, help="max |Δlogit| allowed (absolute)")
    args = ap.parse_args()

    import torch
    import transformers
    import bitsandbytes as bnb
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, bitsandbytes {bnb.__version__}")
    model = AutoModelForCausalLM.from_pretrained(args.prepared, attn_implementation="eager", device_map="cpu")
    model.eval()
    linear4 = [n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    projections = [n for n, m in model.named_modules() if n.endswith("_proj")]
    print(f"loaded: {len(linear4)} Linear4bit modules of {len(projections)} projections; "
          f"quantization_config = {model.config.quantization_config.to_dict().get('bnb_4bit_quant_type')}, "
          f"double quant {model.config.quantization_config.bnb_4bit_use_double_quant}")
    ok = len(linear4) == len(projections) and len(linear4) > 0
    if not ok:
        print("FAIL: not every projection loaded as Linear4bit")

    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    vocab = model.config.vocab_size
    worst = 0.0
    for prompt in PROMPTS:
        ids = tok(prompt, add_special_tokens=True)["input_ids"]
        with torch.inference_mode():
            ref = model(torch.tensor([ids])).logits[0, -1].float()
        out = subprocess.run([args.qlora, "logits", "--model", args.prepared, "--tokenizer", args.tokenizer,
                              "--prompt", prompt, "--json", "--top-k", str(vocab)],
                             check=True, capture_output=True, text=True).stdout
        ours_json = json.loads(out)
        if ours_json["input_ids"] != ids:
            print(f"FAIL: token ids differ for {prompt!r}")
            ok = False
            continue
        ours = torch.zeros(vocab)
        for entry in ours_json["top"]:
            ours[entry["id"]] = entry["logit"]
        diff = (ours - ref).abs().max().item()
        worst = max(worst, diff)
        same = int(ours.argmax()) == int(ref.argmax())
        print(f"{prompt[:40]!r:44s} max|Δlogit| {diff:.3e} (range {ref.max().item() - ref.min().item():.1f}) "
              f"argmax {'same' if same else 'DIFFERENT'} ({int(ref.argmax())})")
        ok = ok and same and diff <= args.tolerance
    print(f"logits: worst max|Δ| {worst:.3e} (tolerance {args.tolerance})")

    if args.source:
        from safetensors import safe_open
        src = safe_open(os.path.join(args.source, "model.safetensors"), "pt")
        dst = safe_open(os.path.join(args.prepared, "model.safetensors"), "pt")
        # The double-quant offset is torch's float32 mean (its last bits depend on the summation order, which
        # depends on the CPU's vector width); qlora uses the float64 mean. So the nested step is compared twice:
        # as bitsandbytes does it end to end, and replayed by bitsandbytes with qlora's stored offset.
        mism = {"packed": 0, "absmax_codes": 0, "nested_absmax": 0, "offset_ulps_max": 0,
                "absmax_codes_given_offset": 0, "nested_absmax_given_offset": 0}
        checked = 0
        for name in src.keys():
            if not name.endswith("_proj.weight"):
                continue
            w = src.get_tensor(name).float()
            packed, state = bnb.functional.quantize_4bit(w, blocksize=64, compress_statistics=True, quant_type="nf4")
            ours_packed = dst.get_tensor(name)
            ours_codes = dst.get_tensor(name + ".absmax")
            ours_nested = dst.get_tensor(name + ".nested_absmax")
            mism["packed"] += int((packed.flatten() != ours_packed.flatten()).sum())
            mism["absmax_codes"] += int((state.absmax.flatten() != ours_codes.flatten()).sum())
            mism["nested_absmax"] += int((state.state2.absmax.view(torch.int32) != ours_nested.view(torch.int32)).sum())
            ours_state = json.loads(bytes(dst.get_tensor(name + ".quant_state.bitsandbytes__nf4").tolist()).decode())
            a = torch.tensor([ours_state["nested_offset"]], dtype=torch.float32).view(torch.int32).item()
            b = state.offset.view(torch.int32).item()
            mism["offset_ulps_max"] = max(mism["offset_ulps_max"], abs(a - b))
            _, plain = bnb.functional.quantize_4bit(w, blocksize=64, compress_statistics=False, quant_type="nf4")
            ours_offset = torch.tensor([ours_state["nested_offset"]], dtype=torch.float32)
            q2, st2 = bnb.functional.quantize_blockwise(plain.absmax - ours_offset, blocksize=256)
            mism["absmax_codes_given_offset"] += int((q2.flatten() != ours_codes.flatten()).sum())
            mism["nested_absmax_given_offset"] += int((st2.absmax.view(torch.int32) != ours_nested.view(torch.int32)).sum())
            checked += 1
        print(f"bytes vs bitsandbytes.quantize_4bit on {checked} source projections: {mism}")
        ok = ok and mism["packed"] == 0 and mism["absmax_codes_given_offset"] == 0 and mism["nested_absmax_given_offset"] == 0
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
