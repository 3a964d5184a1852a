#!/usr/bin/env python3
"""Interop check: llama.cpp (through llama-cpp-python) applies a `qlora export gguf-lora` adapter to a GGUF base
and its logits move the way ours do.

Usage (from the repository root; a venv with llama-cpp-python and numpy, e.g. `python3 -m venv .venv-llama &&
.venv-llama/bin/pip install llama-cpp-python numpy`, which builds llama.cpp from source):

    .venv-llama/bin/python scripts/reference/check_gguf_lora.py --adapter runs/tiny/train \\
        [--base models/SmolLM2-135M-Instruct.Q4_1.gguf] [--tokenizer Tests/QLoRATokenizerTests/Fixtures/smollm2] \\
        [--qlora .build/release/qlora]

Steps:
  1. `qlora export gguf-lora --adapter A --base BASE --out TMP/adapter.gguf` and
     `qlora export merged --model BASE --adapter A --out TMP/merged --dtype fp32` (the same GGUF base, dequantized,
     plus W + s·B·A: our adapted model).
  2. For each prompt (ids from `qlora logits`, fed to llama.cpp as tokens): last-position logits of
     ours: base (`qlora logits --model BASE`) and adapted (`--model TMP/merged`);
     llama.cpp: `Llama(BASE)` and `Llama(BASE, lora_path=TMP/adapter.gguf)`.
  3. Compares the shifts Δ = adapted − base: cosine(Δ_ours, Δ_llama.cpp), max |Δ_ours − Δ_llama.cpp| next to
     max |Δ_ours| and next to how far the two engines already disagree on the base (llama.cpp multiplies
     quantized weights by 8-bit-quantized activations; we dequantize to fp32), and the argmax of each.
Exit status 0 when every cosine is at least --min-cosine. Prints one JSON summary line last.
A wrong Q/K handling (lora_b not permuted like the base's rows) shows up as a low cosine.
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
    ap.add_argument("--min-cosine", type=float, default=0.9)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import numpy as np
    import llama_cpp
    from llama_cpp import Llama

    print(f"llama-cpp-python {llama_cpp.__version__}")
    tmp = tempfile.mkdtemp(prefix="check-gguf-lora-")
    lora = os.path.join(tmp, "adapter.gguf")
    merged = os.path.join(tmp, "merged")
    subprocess.run([args.qlora, "export", "gguf-lora", "--adapter", args.adapter, "--base", args.base, "--out", lora],
                   check=True)
    subprocess.run([args.qlora, "export", "merged", "--model", args.base, "--adapter", args.adapter, "--out", merged,
                    "--dtype", "fp32", "--no-fidelity"], check=True, stdout=subprocess.DEVNULL)

    kw = dict(n_ctx=512, n_threads=args.threads, logits_all=True, verbose=False, seed=0)
    llm_base = Llama(model_path=args.base, **kw)
    llm_lora = Llama(model_path=args.base, lora_path=lora, **kw)
    vocab = llm_base.n_vocab()

    def last_logits(llm, ids):
        llm.reset()
        llm.eval(ids)
        return np.array(llm.scores[len(ids) - 1], dtype=np.float64)

    ok = True
    rows = []
    for prompt in PROMPTS:
        ids, ours_base = qlora_logits(args.qlora, args.base, args.tokenizer, prompt, vocab)
        ids2, ours_lora = qlora_logits(args.qlora, merged, args.tokenizer, prompt, vocab)
        assert ids == ids2
        cpp_base, cpp_lora = last_logits(llm_base, ids), last_logits(llm_lora, ids)
        d_ours, d_cpp = ours_lora - ours_base, cpp_lora - cpp_base
        cos = float(d_ours @ d_cpp / (np.linalg.norm(d_ours) * np.linalg.norm(d_cpp) + 1e-30))
        row = {
            "prompt": prompt[:40], "tokens": len(ids), "cosine_of_shifts": cos,
            "max_abs_shift_ours": float(np.abs(d_ours).max()), "max_abs_shift_llama_cpp": float(np.abs(d_cpp).max()),
            "max_abs_shift_difference": float(np.abs(d_ours - d_cpp).max()),
            "base_max_abs_disagreement": float(np.abs(ours_base - cpp_base).max()),
            "argmax_adapted_ours": int(ours_lora.argmax()), "argmax_adapted_llama_cpp": int(cpp_lora.argmax()),
        }
        rows.append(row)
        print(f"{prompt[:40]!r:44s} cos(Δours, Δllama.cpp) {cos:.4f}  max|Δ| ours {row['max_abs_shift_ours']:.3f} "
              f"llama.cpp {row['max_abs_shift_llama_cpp']:.3f}  max|Δours−Δcpp| {row['max_abs_shift_difference']:.3f} "
              f"(base engines differ by {row['base_max_abs_disagreement']:.3f})  argmax "
              f"{'same' if row['argmax_adapted_ours'] == row['argmax_adapted_llama_cpp'] else 'different'}")
        ok = ok and cos >= args.min_cosine
    print("OK" if ok else "FAIL")
    print(json.dumps({"lora": lora, "prompts": rows}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
