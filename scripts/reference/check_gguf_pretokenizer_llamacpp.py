#!/usr/bin/env python3
"""Checks that llama.cpp tokenizes SmolLM2's GGUF (tokenizer.ggml.pre = smollm) as the original SmolLM2 tokenizer
does: every text of Tests/QLoRATokenizerTests/Fixtures/smollm2-digits/goldens.jsonl (HF `tokenizers` with the
original Digits + ByteLevel pre-tokenizer) through llama-cpp-python, its ids against the goldens' `ids_plain`.
The Swift test GoldenTests.ggufTokenizerFollowsItsPreTypeAsLlamaCppAndTheOriginalTokenizerDo checks qlora's GGUF
tokenizer against the same goldens, so agreement here means qlora, llama.cpp and the original tokenizer agree.

Usage: .venv-llama/bin/python scripts/reference/check_gguf_pretokenizer_llamacpp.py
(llama-cpp-python from PyPI: scripts/peers/setup_llama_venv.sh; the GGUF from scripts/fetch_model.py)
"""
import json
import sys
from pathlib import Path

from llama_cpp import Llama

ROOT = Path(__file__).resolve().parents[2]
model = Llama(model_path=str(ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf"), vocab_only=True, verbose=False)
rows = [json.loads(l) for l in (ROOT / "Tests/QLoRATokenizerTests/Fixtures/smollm2-digits/goldens.jsonl").read_text().splitlines()]
rows = [r for r in rows if "header" not in r]
same = 0
for r in rows:
    # special=True: parse added tokens in the text, as HF `tokenizers` always does.
    ids = model.tokenize(r["text"].encode(), add_bos=False, special=True)
    if ids == r["ids_plain"]:
        same += 1
    else:
        print("differs:", repr(r["text"][:60]), ids[:12], r["ids_plain"][:12])
print(f"llama.cpp agrees with the original SmolLM2 tokenizer on {same} of {len(rows)} texts")
sys.exit(0 if same == len(rows) else 1)
