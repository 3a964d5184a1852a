#!/usr/bin/env python3
"""Encode a corpus with Hugging Face `tokenizers` and time it: the peer for our Swift tokenizer benchmark.

Usage (with the reference venv, see scripts/reference/setup_venv.sh):

    .venv-ref/bin/python scripts/reference/tokenizer_peer.py TOKENIZER_JSON CORPUS OUT_IDS [--threads N] [--repeat R]

CORPUS is UTF-8 text with one input per line, lines separated by "\\n" only (a trailing "\\n" ends the last
line; no other character splits lines). Every line is encoded with add_special_tokens=False and OUT_IDS gets
one compact JSON array of ids per input line, in order (e.g. `[19556,905,17]`).

Two timed modes, each in a fresh subprocess so neither sees the other's BPE cache, and each timing only the
encoding (not loading the tokenizer or reading the file):
  1 thread:    RAYON_NUM_THREADS=1 set before `tokenizers` is imported; `Tokenizer.encode` per line in a loop.
  all threads: `Tokenizer.encode_batch` over all lines at once, TOKENIZERS_PARALLELISM=true and
               RAYON_NUM_THREADS=N when --threads N is given (else rayon's default: one per CPU).
The two modes' ids are compared (sha256 of the serialized ids); OUT_IDS is written by the all-threads run.
With --repeat R each mode runs R times (fresh processes) and the median is reported.

Prints one JSON object on stdout:
  {"lines", "tokens", "seconds_1thread", "seconds_all_threads", "threads", "tokens_per_second_1thread",
   "tokens_per_second_all_threads", "cpu_seconds_1thread", "cpu_seconds_all_threads", "runs_1thread",
   "runs_all_threads", "ids_identical", "tokenizers", ...}
Seconds are wall-clock medians; cpu_seconds (process CPU time, all threads) help on a shared, loaded machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()  # the newline that ends the last line
    return [p.decode("utf-8") for p in parts]


def serialize(all_ids: list[list[int]]) -> bytes:
    return "".join("[" + ",".join(map(str, ids)) + "]\n" for ids in all_ids).encode("ascii")


def child(mode: str, tokenizer_json: str, corpus: str, out_ids: str | None) -> None:
    # Environment (RAYON_NUM_THREADS, TOKENIZERS_PARALLELISM) was set by the parent before this process
    # started, hence before `tokenizers` is imported here.
    import tokenizers

    tok = tokenizers.Tokenizer.from_file(tokenizer_json)
    lines = read_lines(Path(corpus))
    if mode == "single":
        c0, t0 = time.process_time(), time.perf_counter()
        all_ids = [tok.encode(line, add_special_tokens=False).ids for line in lines]
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    else:
        c0, t0 = time.process_time(), time.perf_counter()
        encs = tok.encode_batch(lines, add_special_tokens=False)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        all_ids = [e.ids for e in encs]
    blob = serialize(all_ids)
    if out_ids:
        out = Path(out_ids)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, out)
    print(json.dumps({
        "mode": mode,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "lines": len(lines),
        "tokens": sum(len(ids) for ids in all_ids),
        "ids_sha256": hashlib.sha256(blob).hexdigest(),
        "tokenizers": tokenizers.__version__,
        "rayon_num_threads": os.environ.get("RAYON_NUM_THREADS"),
    }))


def run_child(mode: str, args: argparse.Namespace, write: bool) -> dict:
    env = dict(os.environ)
    if mode == "single":
        env["RAYON_NUM_THREADS"] = "1"
        env["TOKENIZERS_PARALLELISM"] = "false"
    else:
        env["TOKENIZERS_PARALLELISM"] = "true"
        if args.threads:
            env["RAYON_NUM_THREADS"] = str(args.threads)
        else:
            env.pop("RAYON_NUM_THREADS", None)
    cmd = [sys.executable, os.path.abspath(__file__), "--_child", mode,
           str(args.tokenizer_json), str(args.corpus), str(args.out_ids) if write else ""]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"tokenizer_peer: {mode} run failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        _, _, mode, tj, corpus, out = sys.argv
        child(mode, tj, corpus, out or None)
        return 0

    ap = argparse.ArgumentParser(description="Encode CORPUS with HF tokenizers and time it.")
    ap.add_argument("tokenizer_json", type=Path)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("out_ids", type=Path)
    ap.add_argument("--threads", type=int, default=None, help="RAYON_NUM_THREADS for the all-threads run")
    ap.add_argument("--repeat", type=int, default=1, help="runs per mode (fresh processes); median reported")
    args = ap.parse_args()
    for p in (args.tokenizer_json, args.corpus):
        if not p.is_file():
            ap.error(f"no such file: {p}")
    try:
        import tokenizers  # noqa: F401  (only to fail early with a clear message)
    except ImportError:
        ap.error("HF tokenizers is not importable: run with .venv-ref/bin/python (scripts/reference/setup_venv.sh)")

    singles = [run_child("single", args, write=False) for _ in range(max(1, args.repeat))]
    batches = [run_child("batch", args, write=(i == 0)) for i in range(max(1, args.repeat))]
    first = batches[0]
    hashes = {r["ids_sha256"] for r in singles + batches}
    s1 = statistics.median(r["seconds"] for r in singles)
    sn = statistics.median(r["seconds"] for r in batches)
    result = {
        "lines": first["lines"],
        "tokens": first["tokens"],
        "seconds_1thread": round(s1, 4),
        "seconds_all_threads": round(sn, 4),
        "threads": args.threads or os.cpu_count(),
        "tokens_per_second_1thread": round(first["tokens"] / s1, 1),
        "tokens_per_second_all_threads": round(first["tokens"] / sn, 1),
        "cpu_seconds_1thread": round(statistics.median(r["cpu_seconds"] for r in singles), 4),
        "cpu_seconds_all_threads": round(statistics.median(r["cpu_seconds"] for r in batches), 4),
        "runs_1thread": [round(r["seconds"], 4) for r in singles],
        "runs_all_threads": [round(r["seconds"], 4) for r in batches],
        "ids_identical": len(hashes) == 1,
        "ids_sha256": first["ids_sha256"],
        "tokenizers": first["tokenizers"],
        "tokenizer_json": str(args.tokenizer_json),
        "corpus": str(args.corpus),
        "out_ids": str(args.out_ids),
    }
    print(json.dumps(result))
    return 0 if result["ids_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
