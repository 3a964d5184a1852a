#!/usr/bin/env python3
"""Checks the CI examples in examples/ci/ against this build (run by `make test`).

Usage: python3 scripts/check-ci-examples.py [path/to/qlora]

- Both files parse as YAML with the structure their CI expects: a GitHub workflow has `on` and `jobs`, every job
  `runs-on` and `steps`, every step exactly one of `uses`/`run`, every `needs` naming a job; a GitLab file's jobs
  have a `script` and a `stage` from `stages`.
- Every `qlora …` command line in them is accepted by the qlora built here: the subcommand exists and each
  `--option` appears in its `--help` (so an example cannot drift from the CLI).
(actionlint would check more of the GitHub syntax, but no build of it is installable from PyPI or Debian here.)
"""

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
QLORA = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".build/release/qlora")
problems = []


def qlora_lines(text):
    for line in text.splitlines():
        for m in re.finditer(r"(?:^|[;&|]\s*|\s)qlora\s+([a-z][a-z-]*)((?:\s+[^;&|#]*)?)", line):
            yield m.group(1), m.group(2)


def check_command(where, sub, rest):
    help_text = subprocess.run([QLORA, sub, "--help"], capture_output=True, text=True)
    if help_text.returncode != 0:
        problems.append(f"{where}: `qlora {sub}` is not a qlora command")
        return
    for option in re.findall(r"(--[a-z][a-z-]*)", rest):
        if option not in help_text.stdout:
            problems.append(f"{where}: `qlora {sub}` has no option {option}")


gh_path = ROOT / "examples/ci/github-actions.yml"
gh = yaml.safe_load(gh_path.read_text())
on = gh.get("on", gh.get(True))  # YAML 1.1 reads a bare `on` key as true
if not on or not isinstance(gh.get("jobs"), dict):
    problems.append(f"{gh_path}: a workflow needs `on` and `jobs`")
for name, job in (gh.get("jobs") or {}).items():
    if "runs-on" not in job or not isinstance(job.get("steps"), list):
        problems.append(f"{gh_path}: job {name} needs `runs-on` and `steps`")
    needs = job.get("needs", [])
    for n in [needs] if isinstance(needs, str) else needs:
        if n not in gh["jobs"]:
            problems.append(f"{gh_path}: job {name} needs unknown job {n}")
    for i, step in enumerate(job.get("steps") or []):
        if ("uses" in step) == ("run" in step):
            problems.append(f"{gh_path}: job {name} step {i} needs exactly one of `uses` and `run`")
        for sub, rest in qlora_lines(step.get("run", "")):
            check_command(f"{gh_path} job {name}", sub, rest)

gl_path = ROOT / "examples/ci/gitlab-ci.yml"
gl = yaml.safe_load(gl_path.read_text())
stages = gl.get("stages", [])
for name, job in gl.items():
    if name in ("variables", "stages", "default", "include", "workflow") or name.startswith("."):
        continue
    if not isinstance(job, dict) or "script" not in job or job.get("stage") not in stages:
        problems.append(f"{gl_path}: job {name} needs a `script` and a `stage` from {stages}")
        continue
    for line in job["script"]:
        for sub, rest in qlora_lines(line):
            check_command(f"{gl_path} job {name}", sub, rest)

for p in problems:
    print("error:", p)
print(f"CI examples: {'ok' if not problems else f'{len(problems)} problem(s)'}")
sys.exit(1 if problems else 0)
