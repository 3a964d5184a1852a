#!/usr/bin/env python3
"""Write the LoRA training reference fixtures under Tests/QLoRAGradTests/Fixtures/lora/.

Usage (from the repository root; needs the torch reference venv, no model files):

    scripts/reference/setup_torch_venv.sh                        # .venv-torch: torch, transformers, peft, ...
    .venv-torch/bin/python scripts/reference/make_lora_goldens.py

A tiny random LlamaForCausalLM (fp32, eager attention) wrapped by peft with LoRA on all seven projections of every
block, A and B drawn from a seeded generator (B nonzero, unlike PEFT's init, so that dA is not zero). One batch of
two sequences with some labels = -100. What it writes (README.md beside the files describes them):

  model/config.json, model/model.safetensors      the frozen base (save_pretrained of the LlamaForCausalLM)
  adapter/adapter_config.json,
  adapter/adapter_model.safetensors               A and B before training (PeftModel.save_pretrained)
  grads.safetensors                               dA, dB of every module for the batch, named like the adapter
                                                  tensors (`...q_proj.lora_A.weight` holds dA of that A)
  adamw_wd0.safetensors, adamw_wd0.01.safetensors A and B after 10 AdamW steps on the batch
  golden.json                                     input_ids, labels, loss, the 10-step loss sequences, settings

Deterministic (fixed seeds, CPU, 2 threads, deterministic algorithms): running it twice gives identical files.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "QLoRAGradTests" / "Fixtures" / "lora"
GENERATOR = "scripts/reference/make_lora_goldens.py"
THREADS = 2
SEED = 6
VERSIONS = {name: version(name) for name in ("torch", "transformers", "peft", "safetensors", "numpy")}

CONFIG = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              vocab_size=128, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=True,
              rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, bos_token_id=1, eos_token_id=2,
              hidden_act="silu", initializer_range=0.02)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA = dict(r=8, lora_alpha=16, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
STEPS = 10
SEQ_LEN = 12

BASE_INIT = ("torch.Generator().manual_seed(SEED); base parameters in name order, each randn(shape) scaled: "
             "*norm.weight = 1 + 0.1*randn; embed_tokens = 0.25*randn; q_proj/k_proj = 0.15*randn; other linears "
             "0.2*randn (as make_model_goldens.py, so attention is far from uniform)")
LORA_INIT = ("same generator, continuing: LoRA modules in name order, A = uniform(-1/sqrt(in), 1/sqrt(in)) "
             "(PEFT's kaiming bound), B = 0.1*randn (PEFT would use zeros)")


def f32(x) -> float:
    return float(str(np.float32(x)))


def write_json(path: Path, obj) -> None:
    def dump(o, indent):
        pad, inner = " " * indent, " " * (indent + 1)
        if isinstance(o, dict):
            items = [f"{inner}{json.dumps(k)}: {dump(v, indent + 1)}" for k, v in o.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}" if items else "{}"
        if isinstance(o, (list, tuple)):
            if all(not isinstance(x, (dict, list, tuple)) for x in o):
                return "[" + ", ".join(json.dumps(x) for x in o) + "]"
            return "[\n" + ",\n".join(inner + dump(x, indent + 1) for x in o) + "\n" + pad + "]"
        return json.dumps(o)
    path.write_text(dump(obj, 0) + "\n", encoding="utf-8")


def build():
    """The base model, its LoRA wrapper with seeded A/B, the batch (input_ids, labels)."""
    torch.manual_seed(SEED)
    config = LlamaConfig(**CONFIG)
    config._attn_implementation = "eager"
    config.dtype = torch.float32
    base = LlamaForCausalLM(config).float()
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in sorted(base.named_parameters(), key=lambda kv: kv[0]):
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * r)
            elif name.endswith("embed_tokens.weight"):
                p.copy_(0.25 * r)
            elif name.endswith(("q_proj.weight", "k_proj.weight")):
                p.copy_(0.15 * r)
            else:
                p.copy_(0.2 * r)
    model_dir = OUT / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    base.save_pretrained(model_dir, safe_serialization=True)
    (model_dir / "generation_config.json").unlink(missing_ok=True)

    model = get_peft_model(base, LoraConfig(target_modules=TARGETS, **LORA))
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if "lora_A" in name:
                bound = 1 / p.shape[1] ** 0.5
                p.copy_((torch.rand(p.shape, generator=g, dtype=torch.float32) * 2 - 1) * bound)
            elif "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g, dtype=torch.float32))
    ids = torch.randint(3, CONFIG["vocab_size"], (2, SEQ_LEN), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100          # a masked prompt
    labels[1, 9:] = -100          # masked tail (as right padding would be)
    labels[1, 5] = -100           # and one masked token in the middle
    return model, ids, labels


def trainable(model) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def saved_name(name: str) -> str:
    """peft's in-memory name (…lora_A.default.weight) → the saved adapter key (…lora_A.weight)."""
    return name.replace(".default.", ".")


def manual_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    z = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    y = labels[:, 1:].reshape(-1)
    return torch.nn.functional.cross_entropy(z, y, ignore_index=-100, reduction="mean")


def adamw_run(wd: float) -> tuple[list[float], dict[str, torch.Tensor]]:
    model, ids, labels = build()
    model.train()
    params = trainable(model)
    opt = torch.optim.AdamW([p for _, p in params], weight_decay=wd, foreach=False, **ADAMW)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, labels=labels, use_cache=False).loss
        loss.backward()
        opt.step()
        losses.append(f32(loss.item()))
    return losses, {saved_name(n): p.detach().clone().contiguous() for n, p in params}


def main() -> int:
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    OUT.mkdir(parents=True, exist_ok=True)

    model, ids, labels = build()
    model.train()  # dropout is 0, so train and eval agree; train() is what training runs
    adapter_dir = OUT / "adapter"
    model.save_pretrained(adapter_dir, safe_serialization=True)
    (adapter_dir / "README.md").unlink(missing_ok=True)
    # peft keeps target_modules as a set, so its saved order follows string hashing; sort it for stable files
    config_path = adapter_dir / "adapter_config.json"
    adapter_config = json.loads(config_path.read_text())
    adapter_config["target_modules"] = sorted(adapter_config["target_modules"])
    config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True))

    out = model(input_ids=ids, labels=labels, use_cache=False)
    check = manual_loss(out.logits, labels)
    if abs(out.loss.item() - check.item()) > 1e-6:
        raise SystemExit(f"model loss {out.loss.item()} != shifted cross-entropy {check.item()}")
    out.loss.backward()
    params = trainable(model)
    if len(params) != 2 * len(TARGETS) * CONFIG["num_hidden_layers"]:
        raise SystemExit(f"unexpected trainable parameters: {[n for n, _ in params]}")
    grads = {saved_name(n): p.grad.detach().clone().contiguous() for n, p in params}
    if any(float(gr.abs().max()) == 0 for gr in grads.values()):
        raise SystemExit("a LoRA gradient is all zero")
    save_file(grads, str(OUT / "grads.safetensors"), metadata={"format": "pt"})

    runs = []
    for wd in (0.0, 0.01):
        losses, final = adamw_run(wd)
        if losses[0] != f32(out.loss.item()):
            raise SystemExit(f"AdamW run's first loss {losses[0]} != the gradient batch's loss {f32(out.loss.item())}")
        file = f"adamw_wd{wd:g}.safetensors"
        save_file(final, str(OUT / file), metadata={"format": "pt"})
        runs.append({"weight_decay": wd, "losses": losses, "final_adapter": file})

    n_counted = int((labels[:, 1:] != -100).sum())
    golden = {
        "generator": GENERATOR,
        "versions": VERSIONS,
        "dtype": "float32",
        "attn_implementation": "eager",
        "config": {k: v for k, v in CONFIG.items() if k not in ("initializer_range",)},
        "lora": dict(LORA, target_modules=TARGETS, scaling=LORA["lora_alpha"] / LORA["r"]),
        "init": {"seed": SEED, "base": BASE_INIT, "lora": LORA_INIT,
                 "input_ids": "randint(3, vocab, (2, 12)) from the same generator after the LoRA weights"},
        "input_ids": ids.tolist(),
        "labels": labels.tolist(),
        "labels_definition": ("HF convention, unshifted: position t's logits predict labels[t+1]; -100 is ignored; "
                              "no padding, attention_mask all ones, position_ids arange(T)"),
        "counted_targets": n_counted,
        "loss": f32(out.loss.item()),
        "loss_definition": "mean over both sequences of the counted (!= -100) shifted targets' cross-entropy",
        "grads": "grads.safetensors: d loss / d (lora_A, lora_B) of every module, adapter key names",
        "adamw": {"optimizer": "torch.optim.AdamW(foreach=False)", "lr": ADAMW["lr"], "betas": list(ADAMW["betas"]),
                  "eps": ADAMW["eps"], "steps": STEPS,
                  "losses_definition": "losses[i] = the batch loss before update i+1 (same batch every step)",
                  "runs": runs},
    }
    write_json(OUT / "golden.json", golden)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"[done] {OUT.relative_to(ROOT)}: {total:,} bytes; loss {golden['loss']}; "
          f"losses wd0 {runs[0]['losses'][0]} -> {runs[0]['losses'][-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
