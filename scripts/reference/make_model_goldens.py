#!/usr/bin/env python3
"""Write the model reference fixtures ("goldens") under Tests/QLoRAModelTests/Fixtures/.

Usage (from the repository root; needs the torch reference venv):

    scripts/reference/setup_torch_venv.sh                        # .venv-torch: torch, transformers, gguf, ...
    python3 scripts/fetch_model.py                               # models/SmolLM2-135M-Instruct.Q4_1.gguf
    .venv-torch/bin/python scripts/convert_model_to_hf.py        # models/SmolLM2-135M-Instruct/ (fp32 HF)
    .venv-torch/bin/python scripts/reference/make_model_goldens.py [--only tiny|smollm2]

What it writes (Fixtures/README.md describes every file):
  <tiny>/config.json, <tiny>/model.safetensors   tiny random LLaMA-family models (save_pretrained)
  <tiny>/golden.json                             input_ids, fp32 logits at every position, per-sequence mean
                                                 NLL, greedy 8-token continuation (eager attention)
  gqa_tied/model.gguf                            the gqa_tied model in llama.cpp's GGUF layout (F32)
  gqa_tied/model-q8_0.gguf, golden-q8_0.json     same with Q8_0 matrices; goldens from the dequantized weights
  smollm2/golden.json                            SmolLM2-135M-Instruct (fp32 HF conversion): 5 prompts
  smollm2/last_logits_prompt0.f32                the last-position logits of prompt 0, float32 little-endian

Deterministic (fixed seeds, CPU, 2 threads): running it twice gives byte-identical files.
Offline: HF_HUB_OFFLINE=1; the only real model is the one converted from the GGUF in a PyPI wheel.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import gguf  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "QLoRAModelTests" / "Fixtures"
SMOL_DIR = ROOT / "models" / "SmolLM2-135M-Instruct"
GENERATOR = "scripts/reference/make_model_goldens.py"
THREADS = 2

VERSIONS = {name: version(name) for name in ("torch", "transformers", "gguf", "safetensors", "numpy")}

# ------------------------------------------------------------------------------------------------ JSON output


def f32(x) -> float:
    """A float32 value as the shortest decimal that round-trips to the same float32."""
    return float(str(np.float32(x)))


def f32_list(a) -> list:
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 0:
        return f32(a)
    return [f32_list(x) for x in a] if a.ndim > 1 else [float(str(v)) for v in a]


def _dump(obj, indent: int) -> str:
    pad = " " * indent
    inner = " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {_dump(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(x, (dict, list, tuple)) for x in obj):  # a flat list: one line
            return "[" + ", ".join(json.dumps(x, ensure_ascii=False) for x in obj) + "]"
        if all(isinstance(x, (list, tuple)) and len(x) <= 2 and all(not isinstance(y, (dict, list, tuple)) for y in x)
               for x in obj):  # pairs, e.g. (id, logit): one line
            return "[" + ", ".join(_dump(x, 0) for x in obj) + "]"
        return "[\n" + ",\n".join(inner + _dump(x, indent + 1) for x in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False)


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dump(obj, 0) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------------ reference ops


def seq_nll(logits: torch.Tensor, ids: torch.Tensor) -> list[float]:
    """Mean next-token NLL of each sequence (standard shift: logits[t] predicts ids[t+1]), in fp32."""
    lp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    tgt = ids[:, 1:]
    return (-lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)).mean(dim=1).tolist()


@torch.no_grad()
def greedy(model, prompt: torch.Tensor, n: int, eos: int | None) -> dict:
    """generate(do_sample=False) with the KV cache, cross-checked against a cache-free argmax loop."""
    out = model.generate(prompt, max_new_tokens=n, do_sample=False, use_cache=True, eos_token_id=eos,
                         pad_token_id=eos if eos is not None else 0, output_scores=True, return_dict_in_generate=True)
    new = out.sequences[0, prompt.shape[1]:].tolist()
    margins = []
    for s in out.scores:
        top2 = torch.topk(s[0].float(), 2).values
        margins.append(float(top2[0] - top2[1]))
    # cache-free check: one forward over prompt + continuation (causal, so position t sees only tokens <= t);
    # the argmax at the position before each new token must be that token
    if new:
        full = torch.tensor([prompt[0].tolist() + new])
        logits = model(full, use_cache=False).logits[0]
        n = prompt.shape[1]
        for k, t in enumerate(new):
            a = int(logits[n - 1 + k].argmax())
            if a != t and margins[k] > 1e-4:
                raise SystemExit(f"greedy mismatch at step {k}: generate() gave {t}, cache-free argmax {a}")
    if min(margins) < 1e-3:
        print(f"warning: greedy top-2 margin {min(margins):.2e} is below 1e-3 (a near tie)", file=sys.stderr)
    return {"new_ids": new, "stopped_at_eos": eos is not None and len(new) > 0 and new[-1] == eos,
            "min_top2_margin": f32(min(margins)), "top2_margins": [f32(m) for m in margins]}


# ------------------------------------------------------------------------------------------------ tiny models

COMMON = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, vocab_size=128, max_position_embeddings=128,
              bos_token_id=1, eos_token_id=2, initializer_range=0.02, hidden_act="silu")

TINY = {
    "gqa_tied": dict(cls="llama", seed=1, seq_len=12, cfg=dict(
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 100000.0})),
    "mha_untied": dict(cls="llama", seed=2, seq_len=12, cfg=dict(
        num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    "rope_llama3": dict(cls="llama", seed=3, seq_len=40, cfg=dict(
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 32})),
    "qwen2_bias": dict(cls="qwen2", seed=4, seq_len=12, cfg=dict(
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, use_sliding_window=False)),
    "head_dim": dict(cls="llama", seed=5, seq_len=12, cfg=dict(
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, tie_word_embeddings=True, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
}

INIT = ("torch.Generator().manual_seed(seed); parameters in name order, each drawn as randn(shape) and scaled: "
        "*norm.weight = 1 + 0.1*randn; biases = 0.3*randn; embed_tokens/lm_head = 0.25*randn; q_proj/k_proj = "
        "0.15*randn (attention scores ~N(0, 1.4): far from uniform, so RoPE matters); v/o/gate/up/down = 0.2*randn "
        "(attention and MLP outputs larger than the embedding). The HF default (all 0.02) gives near-uniform "
        "logits, and with tied embeddings greedy loops that repeat the last input token. input_ids = randint(3, vocab) from the same "
        "generator")
GREEDY_TOKENS = 8


def make_config(spec: dict):
    cfg = dict(COMMON, **spec["cfg"])
    cls = Qwen2Config if spec["cls"] == "qwen2" else LlamaConfig
    c = cls(**cfg)
    c._attn_implementation = "eager"
    c.dtype = torch.float32
    return c


def build_tiny(name: str, spec: dict):
    torch.manual_seed(spec["seed"])
    config = make_config(spec)
    model = (Qwen2ForCausalLM if spec["cls"] == "qwen2" else LlamaForCausalLM)(config).float().eval()
    g = torch.Generator().manual_seed(spec["seed"])
    with torch.no_grad():
        for pname, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if pname.endswith("norm.weight"):
                p.copy_(1 + 0.1 * r)
            elif pname.endswith(".bias"):
                p.copy_(0.3 * r)
            elif pname.endswith(("q_proj.weight", "k_proj.weight")):
                p.copy_(0.15 * r)
            elif pname.endswith(("embed_tokens.weight", "lm_head.weight")):
                p.copy_(0.25 * r)
            else:
                p.copy_(0.2 * r)
    if config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    else:
        assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    ids = torch.randint(3, config.vocab_size, (2, spec["seq_len"]), generator=g)  # no bos/eos/0 inside
    return model, ids


@torch.no_grad()
def tiny_golden(name: str, model, ids: torch.Tensor, extra: dict | None = None) -> dict:
    out = model(ids, labels=ids, use_cache=False)
    logits = out.logits.float()
    nll = seq_nll(logits, ids)
    if abs(float(out.loss) - sum(nll) / len(nll)) > 1e-5:
        raise SystemExit(f"{name}: model loss {float(out.loss)} != mean of per-sequence NLL {nll}")
    # cross-check: each sequence alone gives the same logits (no cross-batch leakage), within fp32 noise
    for b in range(ids.shape[0]):
        alone = model(ids[b:b + 1], use_cache=False).logits[0]
        d = float((alone - logits[b]).abs().max())
        if d > 1e-5:
            raise SystemExit(f"{name}: sequence {b} alone differs from the batch by {d}")
    eos = model.config.eos_token_id
    c = model.config
    golden = {
        "generator": GENERATOR,
        "versions": VERSIONS,
        "model": name,
        "class": type(model).__name__,
        "attn_implementation": "eager",
        "dtype": "float32",
        "init": INIT,
        "config_summary": {
            "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size,
            "num_hidden_layers": c.num_hidden_layers, "num_attention_heads": c.num_attention_heads,
            "num_key_value_heads": c.num_key_value_heads,
            "head_dim": getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads,
            "vocab_size": c.vocab_size, "tie_word_embeddings": c.tie_word_embeddings, "rms_norm_eps": c.rms_norm_eps,
            "rope_parameters": dict(c.rope_parameters),
        },
        "input_ids": ids.tolist(),
        "position_ids": "arange(T) for each sequence (no padding, attention_mask all ones)",
        "nll": [f32(x) for x in nll],
        "nll_definition": "per sequence: mean over t in 0..<T-1 of -log_softmax(logits[t])[input_ids[t+1]]",
        "loss": f32(out.loss),
        "greedy": dict(prompt="input_ids[0]", max_new_tokens=GREEDY_TOKENS, eos_token_id=eos,
                       method="generate(do_sample=False, use_cache=True); stops after emitting eos_token_id",
                       **greedy(model, ids[0:1], GREEDY_TOKENS, eos)),
        "logits_stats": {"std": f32(logits.std()), "max_abs": f32(logits.abs().max())},
    }
    if extra:
        golden.update(extra)
    golden["logits_shape"] = list(logits.shape)
    golden["logits"] = f32_list(logits.numpy())
    return golden


def save_tiny_model(model, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "model.safetensors", "generation_config.json"):
        (out / f).unlink(missing_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    (out / "generation_config.json").unlink(missing_ok=True)  # not needed: eos is in config.json


# ------------------------------------------------------------------------------------------------ GGUF


def _byte_chars() -> list[str]:
    """GPT-2's byte -> printable character table: the token text of byte b is _byte_chars()[b]."""
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


def permute(w: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute (HF rotate_half order -> GGUF adjacent pairs)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_tensors(model) -> list[tuple[str, np.ndarray, bool]]:
    """(gguf name, HF-order array [out, in], is_matrix) in llama.cpp's order; Q/K still in HF row order."""
    c = model.config
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    out = [("token_embd.weight", sd["model.embed_tokens.weight"], True)]
    for i in range(c.num_hidden_layers):
        for hf, gg in GGUF_NAMES.items():
            a = sd[f"model.layers.{i}.{hf}"]
            out.append((f"blk.{i}.{gg}", a, a.ndim == 2))
    out.append(("output_norm.weight", sd["model.norm.weight"], False))
    if not c.tie_word_embeddings:
        out.append(("output.weight", sd["lm_head.weight"], True))
    return out


def write_gguf(model, path: Path, qtype: gguf.GGMLQuantizationType) -> dict[str, np.ndarray]:
    """Write the model as llama.cpp would (convert_hf_to_gguf.py, LLAMA arch). Matrices (token_embd and the
    linear weights) in qtype, 1-D norms in F32. Returns the weights the file holds, dequantized, in HF order."""
    c = model.config
    hd = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    tmp = path.with_name(path.name + ".tmp")
    w = gguf.GGUFWriter(str(tmp), "llama")
    w.add_name(f"qlora tiny {path.parent.name}")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(float(c.rope_parameters["rope_theta"]))
    w.add_layer_norm_rms_eps(float(c.rms_norm_eps))
    w.add_vocab_size(c.vocab_size)
    w.add_rope_dimension_count(hd)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if qtype == gguf.GGMLQuantizationType.F32
                    else gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    # minimal byte-level tokenizer: token id b is byte b in GPT-2's alphabet (ASCII only: the vocabulary has
    # 128 ids), no merges (gguf-py does not write an empty array)
    assert c.vocab_size <= 256
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(_byte_chars()[:c.vocab_size])
    w.add_token_types([gguf.TokenType.NORMAL] * c.vocab_size)
    w.add_bos_token_id(c.bos_token_id)
    w.add_eos_token_id(c.eos_token_id)
    w.add_add_bos_token(False)
    held: dict[str, np.ndarray] = {}
    for name, a, matrix in gguf_tensors(model):
        a = np.ascontiguousarray(a, dtype=np.float32)
        t = qtype if matrix else gguf.GGMLQuantizationType.F32
        if t == gguf.GGMLQuantizationType.F32:
            q = a
            held[name] = a
        else:
            q = gguf.quants.quantize(a, t)  # per-row blocks: rows may be permuted after quantizing
            held[name] = gguf.quants.dequantize(q, t).reshape(a.shape).astype(np.float32)
        if name.endswith("attn_q.weight"):
            q = permute(q, c.num_attention_heads, c.num_attention_heads)
        elif name.endswith("attn_k.weight"):
            q = permute(q, c.num_attention_heads, c.num_key_value_heads)
        q = np.ascontiguousarray(q)
        if t == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, q)  # gguf-py reverses the numpy shape: ne = [in, out]
        else:
            w.add_tensor(name, q, raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, path)
    return held


def load_dequantized(model, held: dict[str, np.ndarray]):
    """A copy of model with the weights the GGUF holds (dequantized), in HF layout."""
    import copy

    m = copy.deepcopy(model)
    back = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
            "output.weight": "lm_head.weight"}
    for i in range(m.config.num_hidden_layers):
        for hf, gg in GGUF_NAMES.items():
            back[f"blk.{i}.{gg}"] = f"model.layers.{i}.{hf}"
    params = dict(m.named_parameters())
    with torch.no_grad():
        for name, a in held.items():
            params[back[name]].copy_(torch.from_numpy(a))
    return m


@torch.no_grad()
def check_gguf_with_transformers(path: Path, ids: torch.Tensor, want: np.ndarray, tol: float) -> float:
    """Load the GGUF with transformers' own GGUF reader and compare its logits with the golden ones."""
    m = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32,
                                             attn_implementation="eager").eval()
    got = m(ids, use_cache=False).logits.float().numpy()
    d = float(np.abs(got - want).max())
    print(f"[gguf] transformers reads {path.relative_to(ROOT)}: max |logit diff| vs golden {d:.3g}")
    if d > tol:
        raise SystemExit(f"{path.name}: transformers' logits differ from the golden by {d}")
    return d


def gguf_summary(path: Path) -> dict:
    r = gguf.GGUFReader(str(path))
    return {
        "file": path.name,
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "tensors": [{"name": t.name, "type": t.tensor_type.name, "ne": [int(x) for x in t.shape]} for t in r.tensors],
    }


# ------------------------------------------------------------------------------------------------ tiny driver


def make_tiny() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    for name, spec in TINY.items():
        model, ids = build_tiny(name, spec)
        out = FIXTURES / name
        extra = {}
        if name == "rope_llama3":
            # sensitivity: the same weights with plain RoPE (no llama3 scaling) give these logits instead
            plain_spec = dict(spec, cfg=dict(spec["cfg"], rope_parameters={"rope_type": "default",
                                                                           "rope_theta": 500000.0}))
            plain = (LlamaForCausalLM)(make_config(plain_spec)).float().eval()
            plain.load_state_dict(model.state_dict())
            with torch.no_grad():
                a = model(ids, use_cache=False).logits
                b = plain(ids, use_cache=False).logits
            extra["max_abs_logit_diff_without_rope_scaling"] = f32((a - b).abs().max())
            extra["max_abs_logit_diff_without_rope_scaling_positions_lt_32"] = f32((a - b)[:, :32].abs().max())
        golden = tiny_golden(name, model, ids, extra)
        save_tiny_model(model, out)
        # the saved files load back to the same logits
        re = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32, attn_implementation="eager").eval()
        with torch.no_grad():
            d = float((re(ids, use_cache=False).logits - torch.tensor(golden["logits"])).abs().max())
        if d > 1e-6:
            raise SystemExit(f"{name}: reloaded model differs by {d}")
        if name == "gqa_tied":
            held = write_gguf(model, out / "model.gguf", gguf.GGMLQuantizationType.F32)
            golden["gguf"] = gguf_summary(out / "model.gguf")
            golden["gguf"]["transformers_max_abs_logit_diff"] = f32(
                check_gguf_with_transformers(out / "model.gguf", ids, np.array(golden["logits"], np.float32), 1e-5))
            held = write_gguf(model, out / "model-q8_0.gguf", gguf.GGMLQuantizationType.Q8_0)
            deq = load_dequantized(model, held)
            qg = tiny_golden(name + "/model-q8_0.gguf", deq, ids, {
                "weights": "model-q8_0.gguf dequantized with gguf-py (token_embd and linear weights Q8_0, norms F32), "
                           "loaded into the gqa_tied model; config as gqa_tied/config.json",
                "max_abs_logit_diff_vs_f32_model": f32(np.abs(
                    np.array(golden["logits"], np.float32)
                    - deq(ids, use_cache=False).logits.detach().numpy()).max()),
            })
            qg["gguf"] = gguf_summary(out / "model-q8_0.gguf")
            qg["gguf"]["transformers_max_abs_logit_diff"] = f32(
                check_gguf_with_transformers(out / "model-q8_0.gguf", ids, np.array(qg["logits"], np.float32), 1e-4))
            write_json(out / "golden-q8_0.json", qg)
        write_json(out / "golden.json", golden)
        print(f"[tiny] {name}: {type(model).__name__}, logits {golden['logits_shape']}, nll {golden['nll']}, "
              f"greedy {golden['greedy']['new_ids']} (min margin {golden['greedy']['min_top2_margin']})")


# ------------------------------------------------------------------------------------------------ SmolLM2

SMOL_PROMPTS = [
    ("chat_france", None),  # ChatML-rendered, with generation prompt (filled in below)
    ("english", "The old lighthouse keeper climbed the winding stairs every evening to light the lamp."),
    ("code", "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n"),
    ("numbers", "In 2023 revenue rose 17.5% to $4,281,906.37 across 12 regions; Q3 shipped 1,024 units at 3.14 each."),
    # German, Russian, Chinese (no digits: non-ASCII numerals tokenize differently under the GGUF's smollm
    # pre-tokenizer). Picked among a few candidate lines for a greedy continuation without near ties.
    ("non_english", "Der schnelle braune Fuchs springt über den faulen Hund. Москва — столица России. 北京是中国的首都。"),
]
CHAT_MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
SMOL_GREEDY = 32


@torch.no_grad()
def make_smollm2() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if not (SMOL_DIR / "model.safetensors").is_file():
        raise SystemExit(f"{SMOL_DIR} is missing: run .venv-torch/bin/python scripts/convert_model_to_hf.py")
    stamp = json.loads((SMOL_DIR / ".source.json").read_text())
    tok = AutoTokenizer.from_pretrained(str(SMOL_DIR))
    model = AutoModelForCausalLM.from_pretrained(str(SMOL_DIR), dtype=torch.float32, attn_implementation="eager").eval()
    eos = model.config.eos_token_id
    prompts = []
    last0 = None
    for i, (name, text) in enumerate(SMOL_PROMPTS):
        entry: dict = {"name": name}
        if text is None:
            text = tok.apply_chat_template(CHAT_MESSAGES, tokenize=False, add_generation_prompt=True)
            entry["messages"] = CHAT_MESSAGES
            entry["rendering"] = "apply_chat_template(messages, add_generation_prompt=True) with the chat_template " \
                                 "in tokenizer_config.json (adds the default SmolLM system prompt)"
        ids = tok(text, add_special_tokens=False)["input_ids"]
        x = torch.tensor([ids])
        logits = model(x, use_cache=False).logits.float()
        last = logits[0, -1]
        top = torch.topk(last, 20)
        g = greedy(model, x, SMOL_GREEDY, eos)
        entry.update({
            "text": text,
            "ids": ids,
            "nll": f32(seq_nll(logits, x)[0]),
            "last_logit_max": f32(last.max()),
            "last_logit_min": f32(last.min()),
            "top20": [[int(t), f32(v)] for t, v in zip(top.indices.tolist(), top.values.tolist())],
            "greedy": dict(g, text=tok.decode(g["new_ids"], skip_special_tokens=True),
                           text_with_specials=tok.decode(g["new_ids"], skip_special_tokens=False)),
        })
        if i == 0:
            last0 = last.numpy().astype("<f4")
        prompts.append(entry)
        print(f"[smollm2] {name}: {len(ids)} tokens, nll {entry['nll']:.4f}, top1 {entry['top20'][0]}, "
              f"greedy {entry['greedy']['text']!r}")
    out = FIXTURES / "smollm2"
    out.mkdir(parents=True, exist_ok=True)
    (out / "last_logits_prompt0.f32").write_bytes(last0.tobytes())
    write_json(out / "golden.json", {
        "generator": GENERATOR,
        "versions": VERSIONS,
        "model": "models/SmolLM2-135M-Instruct (scripts/convert_model_to_hf.py: transformers' float32 "
                 "dequantization of SmolLM2-135M-Instruct.Q4_1.gguf)",
        "gguf_sha256": stamp["gguf_sha256"],
        "model_safetensors_sha256": stamp["model_safetensors_sha256"],
        "tokenizer": "models/SmolLM2-135M-Instruct/tokenizer.json: transformers' conversion of the GGUF tokenizer "
                     "(ByteLevel pre-tokenizer; same ids as the GGUF's smollm pre-tokenizer for these prompts: "
                     "they have ASCII digits only); add_special_tokens=False (SmolLM2 adds no BOS)",
        "attn_implementation": "eager",
        "dtype": "float32",
        "threads": THREADS,
        "nll_definition": "mean over t in 0..<T-1 of -log_softmax(logits[t])[ids[t+1]] (fp32)",
        "greedy_definition": f"generate(do_sample=False, max_new_tokens={SMOL_GREEDY}, use_cache=True), "
                             f"stops after emitting eos_token_id {eos} (<|im_end|>); new_ids include that eos",
        "last_logits_prompt0": {"file": "last_logits_prompt0.f32", "format": "float32 little-endian",
                                "count": int(last0.size),
                                "sha256": hashlib.sha256(last0.tobytes()).hexdigest()},
        "prompts": prompts,
    })


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["tiny", "smollm2"])
    args = ap.parse_args()
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "tiny"):
        make_tiny()
    if args.only in (None, "smollm2"):
        make_smollm2()
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    print(f"[done] {FIXTURES.relative_to(ROOT)}: {total:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
