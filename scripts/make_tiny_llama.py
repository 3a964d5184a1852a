#!/usr/bin/env python3
"""Write a small random LLaMA in Hugging Face form (config.json + model.safetensors, F32) for the GPU check.

Usage: python3 scripts/make_tiny_llama.py OUT_DIR

SmolLM2's vocabulary (49152, so the committed SmolLM2 tokenizer fixture tokenizes for it), hidden 64, 2 layers,
4 query heads and 2 key/value heads of 16, MLP 128, tied embeddings: about 13 MB. The weights come from numpy's
PCG64 with a fixed seed, so every machine writes the same bytes. scripts/gpu-check.sh builds it into its bundle
(the real SmolLM2 GGUF is larger than what can be sent to the GPU machine) and trains it on CPU and on CUDA.
Needs numpy.
"""

import json
import os
import struct
import sys

import numpy as np

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "vocab_size": 49152,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "float32",
}


def tensors(rng):
    c = CONFIG
    h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    q, kv = c["num_attention_heads"] * c["head_dim"], c["num_key_value_heads"] * c["head_dim"]
    out = {"model.embed_tokens.weight": rng.normal(0, 0.02, (v, h))}
    for layer in range(c["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes = {"self_attn.q_proj": (q, h), "self_attn.k_proj": (kv, h), "self_attn.v_proj": (kv, h), "self_attn.o_proj": (h, q),
                  "mlp.gate_proj": (i, h), "mlp.up_proj": (i, h), "mlp.down_proj": (h, i)}
        for name, shape in shapes.items():
            out[p + name + ".weight"] = rng.normal(0, 1 / np.sqrt(shape[1]), shape)
        out[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.05, (h,))
        out[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.05, (h,))
    out["model.norm.weight"] = 1 + rng.normal(0, 0.05, (h,))
    return {k: np.ascontiguousarray(v, dtype="<f4") for k, v in out.items()}


def write_safetensors(path, named):
    header, offset = {}, 0
    for name in sorted(named):
        t = named[name]
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name in sorted(named):
            f.write(named[name].tobytes())
    os.replace(tmp, path)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), tensors(np.random.Generator(np.random.PCG64(20261207))))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    print(f"tiny LLaMA written to {out}")


if __name__ == "__main__":
    main()
