#!/usr/bin/env python3
"""Interop check: Python `peft` loads a qlora adapter package unchanged, and its logits match qlora's.

Usage (from the repository root, with the pinned reference venv):

    .venv-torch/bin/python scripts/reference/check_peft_adapter.py runs/quickstart/package/quickstart.tar.gz \\
        [--prepared runs/quickstart/prepare/model] [--tokenizer Tests/QLoRATokenizerTests/Fixtures/smollm2] \\
        [--qlora .build/release/qlora]

Steps:
  1. `qlora verify ARCHIVE`, then `qlora unpack ARCHIVE TMPDIR` (an adapter directory is used as is).
  2. transformers loads the prepared NF4 + double-quant base (bitsandbytes Linear4bit, the exact weights the
     adapter was trained over), then `peft.PeftModel.from_pretrained(base, TMPDIR)`; every LoRA module must load
     (no missing or unexpected keys).
  3. For each prompt: last-position logits of peft vs `qlora logits --model PREPARED --adapter ARCHIVE --json`;
     also the base model's logits, to show how far the adapter moves them.
Exit status 0 when every |Δlogit| (peft vs qlora, adapter on) is within --tolerance (default 1e-3).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

PROMPTS = [
    "The capital of France is",
    "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?\nAnswer:",
    "<|im_start|>user\nWhat is your favorite book?<|im_end|>\n<|im_start|>assistant\n",
    "Once upon a time, in a small village by the sea, there lived",
]


def qlora_logits(args, prompt, vocab, adapter):
    cmd = [args.qlora, "logits", "--model", args.prepared, "--tokenizer", args.tokenizer, "--prompt", prompt,
           "--json", "--top-k", str(vocab)]
    if adapter:
        cmd += ["--adapter", args.adapter]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("adapter", help="adapter archive (.tar.gz/.tar.zst/.zip) or directory")
    ap.add_argument("--prepared", default="runs/quickstart/prepare/model")
    ap.add_argument("--tokenizer", default="Tests/QLoRATokenizerTests/Fixtures/smollm2")
    ap.add_argument("--qlora", default=".build/release/qlora")
    ap.add_argument("--tolerance", type=float, default=1e-3)
    args = ap.parse_args()

    import torch
    import transformers
    import peft
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
    directory = args.adapter
    scratch = None
    if os.path.isfile(args.adapter):
        subprocess.run([args.qlora, "verify", args.adapter], check=True)
        scratch = tempfile.mkdtemp(prefix="qlora-peft-")
        directory = os.path.join(scratch, "adapter")
        subprocess.run([args.qlora, "unpack", args.adapter, directory], check=True)
    print("adapter files:", sorted(os.listdir(directory)))

    base = AutoModelForCausalLM.from_pretrained(args.prepared, attn_implementation="eager", device_map="cpu")
    base.eval()
    model = PeftModel.from_pretrained(base, directory)  # raises on a malformed config or tensors
    model.eval()
    lora_modules = [n for n, m in model.named_modules() if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {})]
    print(f"peft loaded: {len(lora_modules)} LoRA modules, config r={model.peft_config['default'].r}, "
          f"alpha={model.peft_config['default'].lora_alpha}, targets={sorted(model.peft_config['default'].target_modules)}")
    ok = len(lora_modules) > 0

    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    vocab = base.config.vocab_size
    worst, moved = 0.0, 0.0
    for prompt in PROMPTS:
        ids = tok(prompt, add_special_tokens=True)["input_ids"]
        with torch.inference_mode():
            ref = model(torch.tensor([ids])).logits[0, -1].float()
            with model.disable_adapter():
                ref_base = model(torch.tensor([ids])).logits[0, -1].float()
        ours_json = qlora_logits(args, prompt, vocab, adapter=True)
        if ours_json["input_ids"] != ids:
            print(f"FAIL: token ids differ for {prompt[:40]!r}")
            ok = False
            continue
        ours = torch.zeros(vocab)
        for entry in ours_json["top"]:
            ours[entry["id"]] = entry["logit"]
        diff = (ours - ref).abs().max().item()
        shift = (ref - ref_base).abs().max().item()
        worst, moved = max(worst, diff), max(moved, shift)
        same = int(ours.argmax()) == int(ref.argmax())
        print(f"{prompt[:40]!r:44s} peft vs qlora max|Δlogit| {diff:.3e}; adapter moves peft's logits by up to "
              f"{shift:.3f}; argmax {'same' if same else 'DIFFERENT'}")
        ok = ok and same and diff <= args.tolerance
    print(f"worst max|Δlogit| {worst:.3e} (tolerance {args.tolerance}); largest adapter effect {moved:.3f}")
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
