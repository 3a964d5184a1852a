#!/usr/bin/env python3
"""Peer for `qlora bench ingest`: the same ingest work in plain Python (json + hashlib).

Reads an alpaca JSONL file line by line, validates the fields, normalizes to chat messages, computes
the SHA-256 of the canonical content, drops exact duplicates, splits 10% eval by hash and writes
train/eval JSONL. Prints the elapsed seconds on the last line.
"""
import hashlib
import json
import os
import sys
import tempfile
import time


def main(path: str) -> None:
    start = time.perf_counter()
    seen = set()
    out_dir = tempfile.mkdtemp(prefix="peer-ingest-")
    train = open(os.path.join(out_dir, "train.jsonl"), "w", encoding="utf-8")
    evals = open(os.path.join(out_dir, "eval.jsonl"), "w", encoding="utf-8")
    rejected = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                row = json.loads(raw)
                instruction, output = row["instruction"], row["output"]
                extra = row.get("input") or ""
                if not isinstance(instruction, str) or not isinstance(output, str) or not isinstance(extra, str):
                    raise TypeError("wrong type")
                if not instruction.strip() or not output.strip():
                    raise ValueError("empty")
            except (ValueError, KeyError, TypeError):
                rejected += 1
                continue
            user = instruction if not extra.strip() else instruction + "\n\n" + extra
            content = json.dumps({"messages": [{"role": "user", "content": user},
                                               {"role": "assistant", "content": output}]},
                                 ensure_ascii=False, separators=(",", ":"))
            digest = hashlib.sha256(content.encode("utf-8")).digest()
            key = digest[:16]
            if key in seen:
                continue
            seen.add(key)
            line = '{"id":"%s","source":"%s:%d","format":"alpaca",%s\n' % (key.hex(), path, number, content[1:])
            (evals if int.from_bytes(digest[:8], "big") < 0.1 * 2**64 else train).write(line)
    train.close()
    evals.close()
    elapsed = time.perf_counter() - start
    for name in ("train.jsonl", "eval.jsonl"):
        os.remove(os.path.join(out_dir, name))
    os.rmdir(out_dir)
    print(f"rows kept {len(seen)}, rejected {rejected}", file=sys.stderr)
    print(f"{elapsed:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
