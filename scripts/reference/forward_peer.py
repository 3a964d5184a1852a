#!/usr/bin/env python3
"""Forward-pass peer benchmark: transformers (PyTorch, float32, CPU) prefill and greedy decode speed.

Usage (from the repository root; `qlora bench forward` calls it the same way):

    .venv-torch/bin/python scripts/reference/forward_peer.py models/SmolLM2-135M-Instruct \\
        --threads 2 --prompt-tokens 128 --decode-tokens 32 [--attn sdpa|eager] [--repeats 5]

MODEL_DIR is a Hugging Face model directory (config.json + model.safetensors), e.g. the fp32 conversion made by
scripts/convert_model_to_hf.py. Prints ONE JSON line on stdout, e.g.

    {"prefill_tokens_per_s": 812.3, "decode_tokens_per_s": 41.7, "threads": 2, "attn": "sdpa", ...}

Method (all float32, torch.inference_mode, torch.set_num_threads(threads), interop threads 1):
  prompt   `--prompt-tokens` token ids drawn with a fixed seed from [3, vocab) (no special tokens).
  prefill  one forward over the whole prompt with use_cache=True (as generation does); 1 warm-up, then the
           median of `--repeats` timed runs; prefill_tokens_per_s = prompt_tokens / median seconds.
  decode   after a prefill (not timed), `--decode-tokens` single-token forwards with the KV cache
           (DynamicCache), each feeding back the argmax (greedy); 1 warm-up pass, then the median over
           `--decode-repeats` passes of the total time; decode_tokens_per_s = decode_tokens / median seconds.
Attention is transformers' "sdpa" by default (its default on CPU); "eager" is the reference path for logits.
Logs go to stderr. Offline: nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")


def main() -> int:
    ap = argparse.ArgumentParser(description="transformers fp32 CPU prefill/decode timing (one JSON line)")
    ap.add_argument("model_dir")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
    ap.add_argument("--repeats", type=int, default=5, help="timed prefill runs (median)")
    ap.add_argument("--decode-repeats", type=int, default=3, help="timed decode passes (median)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.model_dir, "config.json")):
        print(f"forward_peer: {args.model_dir} is not a model directory (no config.json); "
              "make one with scripts/convert_model_to_hf.py", file=sys.stderr)
        return 2

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, DynamicCache

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    transformers.utils.logging.disable_progress_bar()

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32,
                                                 attn_implementation=args.attn).eval()
    load_s = time.perf_counter() - t0
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(args.seed)
    prompt = torch.randint(3, vocab, (1, args.prompt_tokens), generator=g)

    def prefill():
        cache = DynamicCache(config=model.config)
        out = model(prompt, cache=cache, use_cache=True)
        return out.logits[0, -1].argmax().view(1, 1), out.cache

    def decode(first, cache):
        tok = first
        for _ in range(args.decode_tokens):
            out = model(tok, cache=cache, use_cache=True)  # positions follow from the cache length
            tok = out.logits[0, -1].argmax().view(1, 1)
            cache = out.cache
        return tok

    with torch.inference_mode():
        prefill()  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            prefill()
            times.append(time.perf_counter() - t)
        prefill_s = statistics.median(times)

        first, cache = prefill()
        decode(first, cache)  # warm-up
        dtimes = []
        for _ in range(args.decode_repeats):
            first, cache = prefill()
            t = time.perf_counter()
            decode(first, cache)
            dtimes.append(time.perf_counter() - t)
        decode_s = statistics.median(dtimes)

    result = {
        "prefill_tokens_per_s": round(args.prompt_tokens / prefill_s, 2),
        "decode_tokens_per_s": round(args.decode_tokens / decode_s, 2),
        # the fastest run: less sensitive to other processes on a shared machine than the median
        "prefill_tokens_per_s_best": round(args.prompt_tokens / min(times), 2),
        "decode_tokens_per_s_best": round(args.decode_tokens / min(dtimes), 2),
        "threads": args.threads,
        "attn": args.attn,
        "dtype": "float32",
        "prompt_tokens": args.prompt_tokens,
        "decode_tokens": args.decode_tokens,
        "prefill_s_runs": [round(x, 4) for x in times],
        "decode_s_runs": [round(x, 4) for x in dtimes],
        "load_s": round(load_s, 2),
        # 1-minute load average before/after: on a shared 2-core machine another busy process makes OpenMP's
        # threads wait on each other (a 128-token prefill went from 0.4 s to 8 s during a Swift build)
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "model_dir": args.model_dir,
    }
    print(f"[forward_peer] prefill median {prefill_s * 1000:.1f} ms over {args.prompt_tokens} tokens; "
          f"decode median {decode_s * 1000:.1f} ms over {args.decode_tokens} tokens", file=sys.stderr)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
