#!/usr/bin/env python3
"""Interop check: a checkpoint written by `qlora export merged` loads in plain transformers, its logits match
qlora's forward of the same files, and (with --base/--adapter) it reproduces PEFT's adapter-on-base.

Usage (from the repository root, with the pinned reference venv):

    .venv-torch/bin/python scripts/reference/check_merged_hf.py MERGED_DIR \\
        [--tokenizer Tests/QLoRATokenizerTests/Fixtures/smollm2] [--qlora .build/release/qlora] \\
        [--base runs/tiny/prepare/model --adapter runs/tiny/train]

Steps:
  1. `AutoModelForCausalLM.from_pretrained(MERGED_DIR, dtype=float32)`: no quantization, no PEFT; bf16/fp16
     tensors are widened to float32 exactly. Fails if the state dict has missing or unexpected keys.
  2. For each prompt: transformers' last-position logits (eager attention) vs `qlora logits --model MERGED_DIR
     --json --top-k VOCAB` on the same ids: max |Δlogit| and argmax.
  3. With --base and --adapter: the unmerged reference as the Python stack computes it, the base loaded by
     transformers (a prepared 4-bit directory through bitsandbytes: NF4 dequantized in its kernel, float32
     compute, i.e. QLoRA's forward) with `PeftModel.from_pretrained(adapter)`; all positions of every prompt vs the
     merged checkpoint in transformers: max |Δlogit|, mean KL(reference || merged), top-1 agreement, next to how
     far the adapter moves the logits at all (PEFT with the adapter disabled).
Prints one JSON summary line last. Exit status 0 when step 2 is within --tolerance and every argmax agrees.
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
    ap.add_argument("merged")
    ap.add_argument("--tokenizer", default="Tests/QLoRATokenizerTests/Fixtures/smollm2")
    ap.add_argument("--qlora", default=".build/release/qlora")
    ap.add_argument("--base", default=None, help="the base the adapter was trained on (HF or prepared 4-bit dir)")
    ap.add_argument("--adapter", default=None, help="the PEFT adapter directory")
    ap.add_argument("--tolerance", type=float, default=2e-3, help="max |Δlogit| allowed between qlora and transformers")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    cfg = json.load(open(os.path.join(args.merged, "config.json")))
    print(f"merged: torch_dtype {cfg.get('torch_dtype')}, quantization_config {'quantization_config' in cfg}")
    merged, info = AutoModelForCausalLM.from_pretrained(args.merged, dtype=torch.float32, attn_implementation="eager",
                                                        output_loading_info=True)
    merged.eval()
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    ok = not bad
    if bad:
        print(f"FAIL: loading info {bad}")
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    vocab = merged.config.vocab_size
    summary: dict = {"merged": args.merged, "torch_dtype": cfg.get("torch_dtype")}

    worst = 0.0
    all_ids = []
    for prompt in PROMPTS:
        ids = tok(prompt, add_special_tokens=True)["input_ids"]
        all_ids.append(ids)
        with torch.inference_mode():
            ref = merged(torch.tensor([ids])).logits[0, -1].float()
        out = subprocess.run([args.qlora, "logits", "--model", args.merged, "--tokenizer", args.tokenizer,
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
        print(f"qlora vs transformers {prompt[:40]!r:44s} max|Δlogit| {diff:.3e} (range "
              f"{ref.max().item() - ref.min().item():.1f}) argmax {'same' if same else 'DIFFERENT'}")
        ok = ok and same and diff <= args.tolerance
    summary["qlora_vs_transformers_max_abs_logit_diff"] = worst
    print(f"qlora vs transformers on the merged checkpoint: worst max|Δ| {worst:.3e} (tolerance {args.tolerance})")

    if args.base and args.adapter:
        from peft import PeftModel
        base = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32, attn_implementation="eager",
                                                    device_map="cpu")
        quantized = getattr(base.config, "quantization_config", None) is not None
        if quantized:
            import bitsandbytes as bnb
            for m in base.modules():
                if isinstance(m, bnb.nn.Linear4bit):
                    m.support_avx512bf16_for_cpu = False  # see shared/PEER.md: keep the plain fp32 dequant path
        reference = PeftModel.from_pretrained(base, args.adapter)
        reference.eval()
        max_diff, kl_sum, n, agree, effect = 0.0, 0.0, 0, 0, 0.0
        for ids in all_ids:
            with torch.inference_mode():
                p = reference(torch.tensor([ids])).logits[0].double()
                q = merged(torch.tensor([ids])).logits[0].double()
                with reference.disable_adapter():
                    b = reference(torch.tensor([ids])).logits[0].double()
            effect = max(effect, (p - b).abs().max().item())
            max_diff = max(max_diff, (p - q).abs().max().item())
            lp, lq = torch.log_softmax(p, -1), torch.log_softmax(q, -1)
            kl_sum += (lp.exp() * (lp - lq)).sum(-1).clamp_min(0).sum().item()
            agree += int((p.argmax(-1) == q.argmax(-1)).sum())
            n += len(ids)
        summary.update({"peft_reference": f"{'bitsandbytes NF4' if quantized else 'fp32'} base + PeftModel",
                        "peft_vs_merged_max_abs_logit_diff": max_diff, "peft_vs_merged_mean_kl": kl_sum / n,
                        "peft_vs_merged_top1_agreement": agree / n, "tokens": n,
                        "adapter_effect_max_abs_logit_diff": effect})
        print(f"PEFT adapter on base ({summary['peft_reference']}) vs merged in transformers over {n} tokens: "
              f"max|Δlogit| {max_diff:.3e}, mean KL {kl_sum / n:.3e}, top-1 agreement {agree / n:.1%} "
              f"(the adapter itself moves the logits by up to {effect:.3f})")
    print("OK" if ok else "FAIL")
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
