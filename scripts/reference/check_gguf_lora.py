#!/usr/bin/env python3
"""Interop check: llama.cpp (through llama-cpp-python) applies a `qlora export gguf-lora` adapter to a GGUF base
and its logits move the way ours do.

Usage (from the repository root; a venv with llama-cpp-python, numpy and gguf, e.g. `python3 -m venv .venv-llama &&
.venv-llama/bin/pip install llama-cpp-python numpy gguf`, which builds llama.cpp from source):

    .venv-llama/bin/python scripts/reference/check_gguf_lora.py --adapter runs/tiny/train \\
        [--base models/SmolLM2-135M-Instruct.Q4_1.gguf] [--tokenizer Tests/QLoRATokenizerTests/Fixtures/smollm2] \\
        [--qlora .build/release/qlora] [--quantized-base]

Steps:
  1. Unless --quantized-base: an F32 copy of the base GGUF (same tensors dequantized with gguf-py, same metadata),
     so llama.cpp multiplies float32 weights by float32 activations and the two engines agree closely on the base
     (on Q4_1 weights llama.cpp quantizes the activations to 8 bits: ~0.6 logits of noise on SmolLM2).
  2. `qlora export gguf-lora --adapter A --base BASE --out TMP/adapter.gguf`, and a control copy of it whose
     attn_q/attn_k lora_b rows are put back in HF order (what an exporter that forgot the converter's Q/K
     permutation would write); `qlora export merged --model BASE --adapter A --out TMP/merged --dtype fp32`
     (the same base plus W + s·B·A: our adapted model).
  3. For each prompt (ids from `qlora logits`, fed to llama.cpp as tokens), last-position logits of ours (base
     and merged) and of llama.cpp (`Llama(BASE)` and `Llama(BASE, lora_path=...)`); compares the shifts
     Δ = adapted − base: cosine(Δ_ours, Δ_llama.cpp) and max |Δ_ours − Δ_llama.cpp| next to max |Δ_ours| and to
     how far the engines already disagree on the base; the same for the control.
Exit status 0 when every cosine of our adapter is at least --min-cosine and above the control's.
Prints one JSON summary line last.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "Question: What is 12 times 7?\nAnswer:",
    "Once upon a time, in a small village by the sea, there lived",
]


def copy_gguf(src: str, dst: str, transform) -> None:
    """Rewrites `src` as `dst` with gguf-py: the same metadata, every tensor as float32 after `transform(name, a)`
    (a is the dequantized numpy array in HF order, [ne1, ne0])."""
    import gguf
    import numpy as np
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, r.fields["general.architecture"].contents())
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue
        vtype = gguf.GGUFValueType(f.types[0])
        sub = gguf.GGUFValueType(f.types[1]) if vtype == gguf.GGUFValueType.ARRAY and len(f.types) > 1 else None
        w.add_key_value(name, f.contents(), vtype, sub)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    for t in r.tensors:
        shape = [int(x) for x in reversed(t.shape)]
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        w.add_tensor(t.name, np.ascontiguousarray(transform(t.name, a)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def unpermute_rows(a, heads: int):
    """llama.cpp's Q/K row order back to HF's (spec safetensors-and-gguf §3.4): (H, hd/2, 2, n) -> swap 1, 2."""
    rows, n = a.shape
    return a.reshape(heads, rows // heads // 2, 2, n).swapaxes(1, 2).reshape(rows, n)


def qlora_logits(qlora: str, model: str, tokenizer: str, prompt: str, vocab: int):
    import numpy as np
    out = subprocess.run([qlora, "logits", "--model", model, "--tokenizer", tokenizer, "--prompt", prompt,
                          "--json", "--top-k", str(vocab)], check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    z = np.zeros(vocab, dtype=np.float64)
    for e in j["top"]:
        z[e["id"]] = e["logit"]
    return j["input_ids"], z


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", required=True, help="PEFT adapter directory (e.g. runs/tiny/train)")
    ap.add_argument("--base", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--tokenizer", default="Tests/QLoRATokenizerTests/Fixtures/smollm2")
    ap.add_argument("--qlora", default=".build/release/qlora")
    ap.add_argument("--min-cosine", type=float, default=0.99)
    ap.add_argument("--quantized-base", action="store_true", help="run llama.cpp on the quantized base as given")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import gguf
    import numpy as np
    import llama_cpp
    from llama_cpp import Llama

    print(f"llama-cpp-python {llama_cpp.__version__}")
    tmp = tempfile.mkdtemp(prefix="check-gguf-lora-")
    base = args.base
    if not args.quantized_base:
        base = os.path.join(tmp, "base-f32.gguf")
        copy_gguf(args.base, base, lambda name, a: a)
    lora = os.path.join(tmp, "adapter.gguf")
    control = os.path.join(tmp, "adapter-unpermuted.gguf")
    merged = os.path.join(tmp, "merged")
    subprocess.run([args.qlora, "export", "gguf-lora", "--adapter", args.adapter, "--base", base, "--out", lora],
                   check=True)
    fields = gguf.GGUFReader(base).fields
    n_head = int(fields["llama.attention.head_count"].contents())
    n_kv = int(fields["llama.attention.head_count_kv"].contents())
    copy_gguf(lora, control, lambda name, a: unpermute_rows(a, n_head) if name.endswith("attn_q.weight.lora_b")
              else unpermute_rows(a, n_kv) if name.endswith("attn_k.weight.lora_b") else a)
    subprocess.run([args.qlora, "export", "merged", "--model", base, "--adapter", args.adapter, "--out", merged,
                    "--dtype", "fp32", "--no-fidelity"], check=True, stdout=subprocess.DEVNULL)

    kw = dict(n_ctx=512, n_threads=args.threads, logits_all=True, verbose=False, seed=0)
    engines = {"base": Llama(model_path=base, **kw), "ours": Llama(model_path=base, lora_path=lora, **kw),
               "control": Llama(model_path=base, lora_path=control, **kw)}
    vocab = engines["base"].n_vocab()

    def last_logits(llm, ids):
        llm.reset()
        llm.eval(ids)
        return np.array(llm.scores[len(ids) - 1], dtype=np.float64)

    def cosine(a, b):
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))

    ok = True
    rows = []
    for prompt in PROMPTS:
        ids, ours_base = qlora_logits(args.qlora, base, args.tokenizer, prompt, vocab)
        ids2, ours_adapted = qlora_logits(args.qlora, merged, args.tokenizer, prompt, vocab)
        assert ids == ids2
        cpp = {k: last_logits(llm, ids) for k, llm in engines.items()}
        d_ours = ours_adapted - ours_base
        d_cpp, d_control = cpp["ours"] - cpp["base"], cpp["control"] - cpp["base"]
        row = {
            "prompt": prompt[:40], "tokens": len(ids), "cosine": cosine(d_ours, d_cpp),
            "cosine_control": cosine(d_ours, d_control),
            "max_abs_shift_ours": float(np.abs(d_ours).max()), "max_abs_shift_llama_cpp": float(np.abs(d_cpp).max()),
            "max_abs_shift_difference": float(np.abs(d_ours - d_cpp).max()),
            "max_abs_shift_difference_control": float(np.abs(d_ours - d_control).max()),
            "base_max_abs_disagreement": float(np.abs(ours_base - cpp["base"]).max()),
            "argmax_same": int(ours_adapted.argmax()) == int(cpp["ours"].argmax()),
        }
        rows.append(row)
        print(f"{prompt[:40]!r:44s} cos(Δours, Δllama.cpp) {row['cosine']:.5f} (control {row['cosine_control']:.4f})  "
              f"max|Δ| ours {row['max_abs_shift_ours']:.3f}  max|Δours−Δcpp| {row['max_abs_shift_difference']:.2e} "
              f"(control {row['max_abs_shift_difference_control']:.3f}; base engines differ by "
              f"{row['base_max_abs_disagreement']:.2e})  argmax {'same' if row['argmax_same'] else 'different'}")
        ok = ok and row["cosine"] >= args.min_cosine and row["cosine"] > row["cosine_control"]
    print("OK" if ok else "FAIL")
    print(json.dumps({"base": "f32 copy" if not args.quantized_base else args.base, "lora": lora, "prompts": rows}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
