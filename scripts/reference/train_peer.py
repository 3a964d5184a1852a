#!/usr/bin/env python3
"""QLoRA training-step peer benchmark: transformers + peft + bitsandbytes (NF4, double quant), on CPU or CUDA.

Usage (from the repository root; `qlora bench train` calls it once per configuration):

    .venv-torch/bin/python scripts/reference/train_peer.py models/SmolLM2-135M-Instruct \\
        --gradient-checkpointing on|off [--threads 2] [--seq 256] [--batch 4] [--steps 3] [--warmup 1] [--rank 16] \\
        [--no-prepare] [--device cpu|cuda] [--base nf4|bf16]
    .venv-torch/bin/python scripts/reference/train_peer.py \\
        shape:hidden=2048,intermediate=8192,layers=16,heads=32,kv_heads=8,head_dim=64,vocab=128256,tied=1 ...

MODEL_DIR is a Hugging Face model directory in fp32 (scripts/convert_model_to_hf.py), or `shape:` and a LLaMA shape
(what `qlora bench train --model-shape` passes): the model is then built with random weights straight on the device,
each projection quantized as it is made (see `random_model`), so an 8B or 70B shape never exists in bf16 at once.
One configuration per process, so that the peak RSS (getrusage ru_maxrss, i.e. VmHWM) is that configuration's
alone. Prints ONE JSON line on stdout, e.g.

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
  timing   --warmup steps, then the median of `--steps` timed steps; tokens_per_s = batch·seq / median seconds.
torch.set_num_threads(--threads), interop threads 1. Logs go to stderr. Offline: nothing is downloaded.

On CUDA (--device cuda) the recipe is the one the QLoRA paper's code runs through the HF Trainer with bf16=True:
  --base nf4   bnb_4bit_compute_dtype=bfloat16, prepare_model_for_kbit_training, the forward under
               torch.autocast(bfloat16), bitsandbytes' PagedAdamW (32-bit, paged_adamw_32bit) instead of AdamW;
  --base bf16  plain LoRA: the base in bfloat16 (no quantization), the same autocast, torch AdamW.
Each step ends with torch.cuda.synchronize(); "peak_device_bytes" is torch.cuda.max_memory_allocated() over the
steps (reset after setup, so it starts from the weights), "device_after_setup_bytes" what setup left allocated.
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
    ap.add_argument("--steps", type=int, default=3, help="timed steps (median), after --warmup untimed ones")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rank", type=int, default=16, help="LoRA rank (alpha = 2·rank)")
    ap.add_argument("--layers", type=int, default=None, help="with shape:, this many blocks instead of the shape's")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--base", choices=["nf4", "bf16"], default="nf4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-prepare", action="store_true", help="skip prepare_model_for_kbit_training")
    args = ap.parse_args()
    shape = None
    if args.model_dir.startswith("shape:"):
        try:
            shape = parse_shape(args.model_dir[len("shape:"):])
        except ValueError as e:
            print(f"train_peer: {e}", file=sys.stderr)
            return 2
        if args.layers is not None:
            shape["layers"] = args.layers
    elif not os.path.isfile(os.path.join(args.model_dir, "config.json")):
        print(f"train_peer: {args.model_dir} is not a model directory (no config.json)", file=sys.stderr)
        return 2
    if args.base == "bf16" and args.device != "cuda":
        print("train_peer: --base bf16 is the CUDA peer (bf16 compute); on CPU the peer is nf4 with fp32 compute", file=sys.stderr)
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

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print("train_peer: --device cuda but torch sees no CUDA GPU", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    compute = torch.bfloat16 if cuda else torch.float32
    t0 = time.perf_counter()
    if shape is not None:
        model = random_model(shape, device, args.base, compute, args.seed)
    elif args.base == "bf16":
        model = AutoModelForCausalLM.from_pretrained(args.model_dir, device_map=args.device, dtype=torch.bfloat16)
    else:
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=compute)
        model = AutoModelForCausalLM.from_pretrained(args.model_dir, quantization_config=quant, device_map=args.device,
                                                     dtype=torch.float32 if not cuda else torch.bfloat16)
    linear4 = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for m in linear4:
        m.support_avx512bf16_for_cpu = False
    prepared = not args.no_prepare and args.base == "nf4"
    if prepared:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    elif checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    if not checkpointing and getattr(model, "is_gradient_checkpointing", False):
        model.gradient_checkpointing_disable()
    model.config.use_cache = False
    lora = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.05, target_modules=TARGETS, bias="none",
                      task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    load_s = time.perf_counter() - t0
    rss_after_load = peak_rss_bytes()
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    paged = cuda and args.base == "nf4"
    if paged:
        optimizer = bnb.optim.PagedAdamW(trainable, lr=2e-4, weight_decay=0.01)
    else:
        optimizer = torch.optim.AdamW(trainable, lr=2e-4, weight_decay=0.01)

    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(args.seed)
    input_ids = torch.randint(3, vocab, (args.batch, args.seq), generator=g).to(device)

    model.train()
    losses = []
    device_after_setup = None
    if cuda:
        torch.cuda.synchronize()
        device_after_setup = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()

    def step() -> float:
        with torch.autocast(device_type=args.device, dtype=compute, enabled=cuda):
            out = model(input_ids=input_ids, labels=input_ids, use_cache=False)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 0.3)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = float(out.loss)  # waits for the forward; the synchronize below for the rest
        if cuda:
            torch.cuda.synchronize()
        return loss

    for _ in range(max(0, args.warmup)):
        losses.append(step())
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
        "device": args.device,
        "base": args.base,
        "compute_dtype": str(compute).replace("torch.", ""),
        "optimizer": type(optimizer).__name__,
        "rank": args.rank,
    }
    if cuda:
        result["peak_device_bytes"] = torch.cuda.max_memory_allocated()
        result["device_after_setup_bytes"] = device_after_setup
        result["gpu"] = torch.cuda.get_device_name()
    print(f"[train_peer] {args.base} on {args.device}, checkpointing {args.gradient_checkpointing}: median step "
          f"{median:.2f} s ({tokens / median:.1f} tokens/s), peak RSS {result['peak_rss_bytes'] / 1e9:.2f} GB", file=sys.stderr)
    print(json.dumps(result), flush=True)
    return 0


def parse_shape(text: str) -> dict:
    """`hidden=2048,intermediate=8192,...`: the fields `qlora bench train --model-shape` passes."""
    fields = {"hidden", "intermediate", "layers", "heads", "kv_heads", "head_dim", "vocab", "tied"}
    shape = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        if key not in fields or not value.isdigit():
            raise ValueError(f"shape: {item!r} is not one of {sorted(fields)} = a number")
        shape[key] = int(value)
    if set(shape) != fields:
        raise ValueError(f"shape: missing {sorted(fields - set(shape))}")
    return shape


def random_model(shape: dict, device, base: str, compute, seed: int):
    """A LlamaForCausalLM of `shape` with random weights, made on `device` without a full-precision copy of the
    projections: the model is built on the meta device; each of the seven projections of every block is then made
    as a normal(0, 0.02) bf16 matrix on the device and, for --base nf4, quantized at once by bitsandbytes
    (Params4bit: NF4, double quant, block 64) into a Linear4bit, so only one bf16 projection exists at a time; the
    embedding, LM head and norms are materialized on the device (normal(0, 0.02) and ones, fp32 for nf4 as
    from_pretrained with dtype=float32 makes them, bf16 for the bf16 base)."""
    import torch
    import bitsandbytes as bnb
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    cfg = LlamaConfig(hidden_size=shape["hidden"], intermediate_size=shape["intermediate"],
                      num_hidden_layers=shape["layers"], num_attention_heads=shape["heads"],
                      num_key_value_heads=shape["kv_heads"], head_dim=shape["head_dim"], vocab_size=shape["vocab"],
                      tie_word_embeddings=bool(shape["tied"]), max_position_embeddings=8192, rms_norm_eps=1e-5,
                      rope_theta=500000.0)
    torch.manual_seed(seed)
    dense = torch.bfloat16 if base == "bf16" else torch.float32
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    for layer in model.model.layers:
        for parent, names in ((layer.self_attn, TARGETS[:4]), (layer.mlp, TARGETS[4:])):
            for name in names:
                old = getattr(parent, name)
                w = torch.empty(old.out_features, old.in_features, device=device, dtype=torch.bfloat16).normal_(0, 0.02)
                if base == "bf16":
                    new = torch.nn.Linear(old.in_features, old.out_features, bias=False, device="meta")
                    new.weight = torch.nn.Parameter(w, requires_grad=False)
                else:
                    new = bnb.nn.Linear4bit(old.in_features, old.out_features, bias=False, compute_dtype=compute,
                                            compress_statistics=True, quant_type="nf4", device="meta")
                    new.weight = bnb.nn.Params4bit(w, requires_grad=False, compress_statistics=True, quant_type="nf4",
                                                   blocksize=64, module=new).to(device)
                del w
                setattr(parent, name, new)
    # Everything else (embedding, norms, LM head) is still on the meta device: made here (a tied LM head is the
    # embedding, tied below, so it is not made twice).
    for module in model.modules():
        if cfg.tie_word_embeddings and module is model.lm_head:
            continue
        for name, p in list(module.named_parameters(recurse=False)):
            if not p.is_meta:
                continue
            t = torch.empty(p.shape, device=device, dtype=dense)
            if name == "weight" and p.dim() == 1:
                t.fill_(1.0)   # RMSNorm
            else:
                t.normal_(0, 0.02)
            setattr(module, name, torch.nn.Parameter(t, requires_grad=False))
    model.model.rotary_emb = LlamaRotaryEmbedding(config=cfg).to(device)  # built on the default device (CPU)
    if cfg.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    if base == "nf4":
        model.is_loaded_in_4bit = True  # as from_pretrained marks it: peft's prepare and LoRA dispatch read it
    leftover = [n for n, p in model.named_parameters() if p.is_meta] + [n for n, b in model.named_buffers() if b.is_meta]
    if leftover:
        raise RuntimeError(f"random_model: still on the meta device: {leftover[:5]}")
    return model


if __name__ == "__main__":
    sys.exit(main())
