#!/usr/bin/env python3
"""Decode peer benchmark: llama.cpp (through llama-cpp-python) prefill and greedy decode speed on a GGUF.

Usage (from the repository root; `qlora bench generate` calls it the same way):

    .venv-llama/bin/python scripts/peers/llama_cpp_generate.py models/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --threads 2 --prompt-ids 1,9690,198,... --decode-tokens 128 [--repeat 3]

The venv comes from scripts/peers/setup_llama_venv.sh (llama-cpp-python built from the PyPI sdist, native CPU
build). The model runs with the GGUF's own weight types (Q4_1 for SmolLM2), CPU only, n_threads =
n_threads_batch = --threads. Prints ONE JSON line on stdout, e.g.

    {"prefill_tokens_per_s": 650.1, "decode_tokens_per_s": 95.2, "threads": 2, "generated": [...], ...}

Method:
  prompt   the given token ids (qlora's tokenization of its chat-templated prompt, so both sides see the same
           tokens); no BOS is added.
  prefill  one eval of the whole prompt (one batch, n_batch >= prompt length) after reset().
  decode   --decode-tokens single-token evals, each feeding back the argmax of the last logits (greedy; stop
           tokens ignored so every run decodes the same count).
  One warm-up run, then the median over --repeat runs of the wall-clock times (prefill; total decode, the
  argmax included, as qlora's figure includes its own). llama.cpp's own perf counters of the last run are
  reported too (perf_*), where this llama-cpp-python exposes them.
Logs go to stderr. Offline: nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import llama_cpp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gguf")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--prompt-ids", required=True, help="comma-separated token ids")
    ap.add_argument("--decode-tokens", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    prompt = [int(t) for t in args.prompt_ids.split(",") if t]
    n_ctx = len(prompt) + args.decode_tokens + 16
    llm = llama_cpp.Llama(model_path=args.gguf, n_ctx=n_ctx, n_batch=max(512, len(prompt)), n_threads=args.threads,
                          n_threads_batch=args.threads, n_gpu_layers=0, logits_all=False, verbose=False)
    n_vocab = llm.n_vocab()

    def last_logits() -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(n_vocab,))

    def run() -> tuple[float, float, list[int]]:
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        out: list[int] = []
        for _ in range(args.decode_tokens):
            nxt = int(np.argmax(last_logits()))
            out.append(nxt)
            llm.eval([nxt])
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, out

    run()  # warm-up
    prefill, decode, generated = [], [], []
    perf = {}
    for _ in range(args.repeat):
        if hasattr(llama_cpp, "llama_perf_context_reset"):
            llama_cpp.llama_perf_context_reset(llm.ctx)
        p, d, generated = run()
        prefill.append(p)
        decode.append(d)
        if hasattr(llama_cpp, "llama_perf_context"):
            data = llama_cpp.llama_perf_context(llm.ctx)
            perf = {"perf_prompt_ms": data.t_p_eval_ms, "perf_prompt_tokens": data.n_p_eval,
                    "perf_decode_ms": data.t_eval_ms, "perf_decode_tokens": data.n_eval}
    p, d = statistics.median(prefill), statistics.median(decode)
    types = sorted({str(v) for k, v in (llm.metadata or {}).items() if k == "general.file_type"})
    report = {
        "prefill_tokens_per_s": len(prompt) / p,
        "decode_tokens_per_s": args.decode_tokens / d,
        "prefill_s": prefill,
        "decode_s": decode,
        "threads": args.threads,
        "prompt_tokens": len(prompt),
        "decode_tokens": args.decode_tokens,
        "weights": "GGUF file_type " + (types[0] if types else "?"),
        "version": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
        "generated": generated,
        **perf,
    }
    print(f"llama.cpp {llama_cpp.__version__}: prefill {report['prefill_tokens_per_s']:.1f} tok/s, "
          f"decode {report['decode_tokens_per_s']:.1f} tok/s", file=sys.stderr)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
