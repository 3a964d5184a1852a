#!/usr/bin/env python3
"""QLoRA training-step peer benchmark: transformers + peft + bitsandbytes (NF4, double quant) on CPU.

Usage (from the repository root; `qlora bench train` calls it once per configuration):

    .venv-torch/bin/python scripts/reference/train_peer.py models/SmolLM2-135M-Instruct \\
        --gradient-checkpointing on|off [--threads 2] [--seq 256] [--batch 4] [--steps 3] [--no-prepare]

MODEL_DIR is a Hugging Face model directory in fp32 (scripts/convert_model_to_hf.py). One configuration per
process, so that the peak RSS (getrusage ru_maxrss, i.e. VmHWM) is that configuration's alone. Prints ONE JSON
line on stdout, e.g.

    {"tokens_per_s": 201.3, "peak_rss_bytes": 5912345600, "gradient_checkpointing": true, ...}

Method — the QLoRA recipe as the paper's code and the PEFT docs run it:
  base     AutoModelForCausalLM.from_pretrained(..., quantization_config=BitsAndBytesConfig(load_in_4bit=True,
           bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.float32),
           device_map="cpu"): the seven projections of every block become bnb Linear4bit.
  trap     every Linear4bit gets `support_avx512bf16_for_cpu = False` (see ../shared/PEER.md: on an AVX512-BF16 CPU
           an eval-mode no-grad forward otherwise repacks the weight for a bf16 kernel without a correct backward).
  prepare  peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=<on|off>) (casts the non-4-bit
           parameters to fp32, makes the embedding output require grad, enables checkpointing when asked);
           --no-prepare skips it and calls model.gradient_checkpointing_enable() directly when on.
  lora     LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=all seven projections,
           task_type=CAUSAL_LM); get_peft_model.
  step     model.train(); loss = model(input_ids, labels=input_ids).loss (every token trained; HF shifts);
           loss.backward(); clip_grad_norm_(trainable, 0.3); torch.optim.AdamW(lr 2e-4).step(); zero_grad.
  data     `--batch` sequences of `--seq` token ids drawn with a fixed seed from [3, vocab).
  timing   1 warm-up step, then the median of `--steps` timed steps; tokens_per_s = batch·seq / median seconds.
torch.set_num_threads(--threads), interop threads 1. Logs go to stderr. Offline: nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def main() -> int:
    ap = argparse.ArgumentParser(description="transformers+peft+bitsandbytes QLoRA CPU step timing (one JSON line)")
    ap.add_argument("model_dir")
    ap.add_argument("--gradient-checkpointing", choices=["on", "off"], required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3, help="timed steps (median), after 1 warm-up")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-prepare", action="store_true", help="skip prepare_model_for_kbit_training")
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.model_dir, "config.json")):
        print(f"train_peer: {args.model_dir} is not a model directory (no config.json)", file=sys.stderr)
        return 2
    checkpointing = args.gradient_checkpointing == "on"
    load_before = os.getloadavg()[0]

    warnings.filterwarnings("ignore")
    import torch
    import transformers
    import peft
    import bitsandbytes as bnb
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(args.seed)

    t0 = time.perf_counter()
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, quantization_config=quant, device_map="cpu",
                                                 dtype=torch.float32)
    linear4 = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for m in linear4:
        m.support_avx512bf16_for_cpu = False
    prepared = not args.no_prepare
    if prepared:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    elif checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    if not checkpointing and getattr(model, "is_gradient_checkpointing", False):
        model.gradient_checkpointing_disable()
    model.config.use_cache = False
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=TARGETS, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    load_s = time.perf_counter() - t0
    rss_after_load = peak_rss_bytes()
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    optimizer = torch.optim.AdamW(trainable, lr=2e-4)

    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(args.seed)
    input_ids = torch.randint(3, vocab, (args.batch, args.seq), generator=g)

    model.train()
    losses = []

    def step() -> float:
        out = model(input_ids=input_ids, labels=input_ids, use_cache=False)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 0.3)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(out.loss)

    losses.append(step())  # warm-up
    times = []
    for _ in range(max(1, args.steps)):
        t = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    tokens = args.batch * args.seq
    result = {
        "tokens_per_s": round(tokens / median, 2),
        "tokens_per_s_best": round(tokens / min(times), 2),
        "peak_rss_bytes": peak_rss_bytes(),
        "rss_after_load_bytes": rss_after_load,
        "gradient_checkpointing": checkpointing,
        "gradient_checkpointing_active": bool(getattr(model.base_model.model, "is_gradient_checkpointing", False)),
        "prepare_model_for_kbit_training": prepared,
        "linear4bit_modules": len(linear4),
        "trainable_parameters": n_trainable,
        "step_s_runs": [round(x, 4) for x in times],
        "losses": [round(x, 5) for x in losses],
        "threads": args.threads,
        "seq": args.seq,
        "batch": args.batch,
        "load_s": round(load_s, 2),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "bitsandbytes": bnb.__version__,
        "model_dir": args.model_dir,
    }
    print(f"[train_peer] checkpointing {args.gradient_checkpointing}: median step {median:.2f} s "
          f"({tokens / median:.1f} tokens/s), peak RSS {result['peak_rss_bytes'] / 1e9:.2f} GB", file=sys.stderr)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
