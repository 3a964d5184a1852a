#!/usr/bin/env python3
"""Golden ids/labels for the tokenize stage, made with the reference stack (transformers' tokenizer and
apply_chat_template) and the masking rule qlora documents (QLoRATokenizer/ChatFormatter.swift):

- chat-like examples: for each assistant message k, the prompt part is
  apply_chat_template(messages[:k], add_generation_prompt=True) and the trained part is what
  apply_chat_template(messages[:k+1]) adds to it; messages after the last assistant turn are dropped;
  each part is tokenized on its own (add_special_tokens=False) and the ids concatenated;
- completion examples: [post-processor specials] + prompt (masked), completion (trained);
- text examples: [post-processor specials] (masked) + text (trained);
- EOS is appended to a trained part that does not contain it.

Usage (with .venv-ref): make_tokenize_goldens.py TOKENIZER_DIR INGEST_DIR OUT.jsonl
Writes one line per example (train split then eval split): {"split", "id", "ids", "labels"}.
"""
import json
import sys

from transformers import AutoTokenizer


def main(tokenizer_dir: str, ingest_dir: str, out_path: str) -> None:
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    eos = tok.eos_token_id
    specials = tok("", add_special_tokens=True)["input_ids"]

    def enc(text):
        return tok(text, add_special_tokens=False)["input_ids"]

    def render(messages, gen):
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)

    lines = []
    for split in ("train", "eval"):
        with open(f"{ingest_dir}/{split}.jsonl", encoding="utf-8") as f:
            for raw in f:
                ex = json.loads(raw)
                parts = []
                if "messages" in ex:
                    msgs = ex["messages"]
                    last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
                    consumed = ""
                    for k in range(last + 1):
                        if msgs[k]["role"] != "assistant":
                            continue
                        prompt = render(msgs[:k], True)
                        full = render(msgs[: k + 1], False)
                        assert prompt.startswith(consumed) and full.startswith(prompt), ex["id"]
                        if len(prompt) > len(consumed):
                            parts.append((enc(prompt[len(consumed):]), False))
                        parts.append((enc(full[len(prompt):]), True))
                        consumed = full
                elif "prompt" in ex:
                    parts.append((specials + enc(ex["prompt"]), False))
                    parts.append((enc(ex["completion"]), True))
                else:
                    if specials:
                        parts.append((specials, False))
                    parts.append((enc(ex["text"]), True))
                ids, labels = [], []
                for i, (p, trained) in enumerate(parts):
                    p = list(p)
                    nxt = parts[i + 1][0] if i + 1 < len(parts) else []
                    if trained and eos is not None and eos not in p and not (nxt and nxt[0] == eos):
                        p.append(eos)
                    ids += p
                    labels += [1 if trained else 0] * len(p)
                lines.append(json.dumps({"split": split, "id": ex["id"], "ids": ids, "labels": labels}, separators=(",", ":")))
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} examples to {out_path}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
