#!/usr/bin/env bash
# Crash, corruption and concurrency checks of `qlora run` on a large (>= 200 MB) JSONL file:
#  1. kill -9 during ingest, run again: completes, no *.tmp* left, outputs byte-identical to an
#     uninterrupted run;
#  2. corrupt an output: the next run detects it and redoes the stage (same bytes again);
#  3. two concurrent runs on one run directory: the second fails naming the holder, the first completes;
#  4. (with the SmolLM2 GGUF present) kill -9 during training of pipelines/tiny.yaml at several points, run
#     again: it resumes from the newest checkpoint and ends with a byte-identical adapter and the same loss
#     sequence as an uninterrupted run; SIGINT saves a checkpoint and stops; a corrupted newest checkpoint
#     is skipped, and the log says so.
# Usage: scripts/crash-test.sh [path/to/qlora]
set -euo pipefail
QLORA=$(realpath "${1:-.build/release/qlora}")
WORK=$(mktemp -d /tmp/qlora-crash.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
pass=0; fail=0
ok()   { echo "PASS: $*"; pass=$((pass+1)); }
bad()  { echo "FAIL: $*"; fail=$((fail+1)); }

"$QLORA" bench ingest --generate-only --size-mb 210 --file "$WORK/big.jsonl"
cat > "$WORK/spec.yaml" <<YAML
name: crash
dataset:
  files:
    - path: big.jsonl
      format: alpaca
  eval_fraction: 0.05
YAML
digest() { (cd "$1/ingest" && sha256sum train.jsonl eval.jsonl stats.json rejected.jsonl); }

# Reference: an uninterrupted run.
"$QLORA" run "$WORK/spec.yaml" --run-dir "$WORK/ref" --ci > "$WORK/ref.log"
digest "$WORK/ref" > "$WORK/ref.sha"

# 1. kill -9 while the ingest stage is writing.
"$QLORA" run "$WORK/spec.yaml" --run-dir "$WORK/a" --ci > "$WORK/a1.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  tmp=$(ls -d "$WORK"/a/ingest.tmp-* 2>/dev/null | head -1 || true)
  if [ -n "$tmp" ] && [ "$(stat -c %s "$tmp/train.jsonl" 2>/dev/null || echo 0)" -gt 20000000 ]; then break; fi
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
if ls -d "$WORK"/a/ingest.tmp-* >/dev/null 2>&1 && [ ! -e "$WORK/a/ingest/manifest.json" ]; then
  ok "killed during ingest (temporary directory present, no manifest)"
else
  bad "the kill did not land during ingest"
fi
"$QLORA" run "$WORK/spec.yaml" --run-dir "$WORK/a" --ci > "$WORK/a2.log"
grep -q "removed leftovers" "$WORK/a2.log" && ok "rerun cleaned up the interrupted stage" || bad "no cleanup message"
if ls -d "$WORK"/a/*.tmp* >/dev/null 2>&1; then bad "*.tmp* left behind"; else ok "no *.tmp* left behind"; fi
digest "$WORK/a" | diff - "$WORK/ref.sha" >/dev/null && ok "outputs byte-identical to the uninterrupted run" \
  || bad "outputs differ from the uninterrupted run"

# 2. Corrupt one output byte: the next run must notice and redo the stage.
printf 'X' | dd of="$WORK/a/ingest/train.jsonl" bs=1 seek=100 conv=notrunc status=none
"$QLORA" run "$WORK/spec.yaml" --run-dir "$WORK/a" --ci > "$WORK/a3.log"
grep -q "ingest .*running: output \`train.jsonl\` changed" "$WORK/a3.log" && ok "corruption detected" || bad "corruption not detected"
digest "$WORK/a" | diff - "$WORK/ref.sha" >/dev/null && ok "redone outputs byte-identical" || bad "redone outputs differ"
"$QLORA" run "$WORK/spec.yaml" --run-dir "$WORK/a" --ci > "$WORK/a4.log"
grep -q "ingest .*skipped: up to date" "$WORK/a4.log" && ok "next run skips" || bad "next run did not skip"

# 3. Two concurrent runs on one run directory.
"$QLORA" run "$WORK/spec.yaml" --run-dir "$WORK/b" --ci > "$WORK/b1.log" 2>&1 &
first=$!
for _ in $(seq 1 200); do [ -s "$WORK/b/lock" ] && break; sleep 0.05; done
set +e
"$QLORA" run "$WORK/spec.yaml" --run-dir "$WORK/b" --ci > "$WORK/b2.log" 2>&1
second=$?
wait "$first"; first_status=$?
set -e
if [ "$second" -eq 4 ] && grep -q "locked by pid $first" "$WORK/b2.log"; then ok "second run refused (exit 4), naming pid $first"
else bad "second run: exit $second, $(cat "$WORK/b2.log")"; fi
[ "$first_status" -eq 0 ] && digest "$WORK/b" | diff - "$WORK/ref.sha" >/dev/null && ok "first run completed untouched" \
  || bad "first run failed or differs"

# 4. Training: kill -9 at several points, resume, compare with an uninterrupted run.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
  losses() { python3 -c 'import json,sys; print([json.loads(l)["loss"] for l in open(sys.argv[1])])' "$1/train/metrics.jsonl"; }
  "$QLORA" run "$ROOT/pipelines/tiny.yaml" --run-dir "$WORK/t-ref" --ci > "$WORK/t-ref.log" 2>&1
  ref_adapter=$(sha256sum < "$WORK/t-ref/train/adapter_model.safetensors")
  ref_losses=$(losses "$WORK/t-ref")
  # Kill once the checkpoint of step $after exists, after a further delay (lands mid-step or mid-write).
  # Delays stay well under one tiny step (about 1 s on 2 cores), so every kill lands before training ends.
  for case in "1 0" "2 0.4" "3 0.2"; do
    set -- $case; after=$1; delay=$2
    run="$WORK/t-$after"
    "$QLORA" run "$ROOT/pipelines/tiny.yaml" --run-dir "$run" --ci > "$run.1.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 1200); do [ -d "$run/train.checkpoints/step-$(printf %08d "$after")" ] && break; sleep 0.05; done
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    "$QLORA" run "$ROOT/pipelines/tiny.yaml" --run-dir "$run" --ci > "$run.2.log" 2>&1
    if grep -q "resumed from step-" "$run.2.log" && [ "$(sha256sum < "$run/train/adapter_model.safetensors")" = "$ref_adapter" ] \
       && [ "$(losses "$run")" = "$ref_losses" ]; then
      ok "training killed after checkpoint $after (+${delay}s) resumed to a byte-identical adapter and the same losses"
    else
      bad "training killed after checkpoint $after: resume differs ($(grep -h "resumed\|unusable" "$run.2.log" | head -2))"
    fi
  done
  # SIGINT: a graceful stop that saves a checkpoint, exits 75 (interrupted, resumable) naming the step, with
  # summary.json saying so, and resumes to the same result.
  run="$WORK/t-sigint"
  "$QLORA" run "$ROOT/pipelines/tiny.yaml" --run-dir "$run" --ci > "$run.1.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 1200); do [ -d "$run/train.checkpoints/step-00000001" ] && break; sleep 0.05; done
  kill -INT "$pid" 2>/dev/null || true
  set +e; wait "$pid"; status=$?; set -e
  "$QLORA" run "$ROOT/pipelines/tiny.yaml" --run-dir "$run" --ci > "$run.2.log" 2>&1
  if [ "$status" -eq 75 ] && grep -q "interrupted at step" "$run.1.log" && grep -q "resumed from step-" "$run.2.log" \
     && [ "$(sha256sum < "$run/train/adapter_model.safetensors")" = "$ref_adapter" ]; then
    ok "SIGINT saved a checkpoint and exited 75; the next run resumed to a byte-identical adapter"
  else
    bad "SIGINT: exit $status, $(grep -h "interrupted\|resumed" "$run.1.log" "$run.2.log" | head -2)"
  fi
  # A corrupt newest checkpoint: skipped with a message, the previous one used, same result.
  run="$WORK/t-corrupt"
  "$QLORA" run "$ROOT/pipelines/tiny.yaml" --run-dir "$run" --ci > "$run.1.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 1200); do [ -d "$run/train.checkpoints/step-00000002" ] && break; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  newest=$(ls -d "$run"/train.checkpoints/step-* | sort | tail -1)
  printf 'X' | dd of="$newest/adapter.safetensors" bs=1 seek=200 conv=notrunc status=none
  "$QLORA" run "$ROOT/pipelines/tiny.yaml" --run-dir "$run" --ci > "$run.2.log" 2>&1
  if grep -q "$(basename "$newest") is unusable" "$run.2.log" && grep -q "resumed from step-" "$run.2.log" \
     && [ "$(sha256sum < "$run/train/adapter_model.safetensors")" = "$ref_adapter" ]; then
    ok "corrupt newest checkpoint skipped (log says so), resumed from the previous one, byte-identical result"
  else
    bad "corrupt checkpoint handling: $(grep -h "resumed\|unusable" "$run.2.log" | head -3)"
  fi
  # SIGTERM (docker stop) while each of the six stages runs: exit 75 with summary.json "interrupted" (a stage that
  # does not poll finishes first, then the run stops; training stops at its next step with a checkpoint), and the
  # next run completes to the same adapter and training losses as the uninterrupted one, and an archive that verifies
  # (archives are reproducible per run directory; the manifest names this one). The last stage has nothing after
  # it: stopped there, the run ends complete (exit 0) and that is what is checked.
  for stage in ingest tokenize prepare train evaluate package; do
    run="$WORK/term-$stage"
    "$QLORA" run "$ROOT/pipelines/tiny.yaml" --run-dir "$run" --ci > "$run.1.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 6000); do compgen -G "$run/$stage.tmp-*" > /dev/null && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.005; done
    kill -TERM "$pid" 2>/dev/null || true
    set +e; wait "$pid"; status=$?; set -e
    summary_status=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$run/summary.json" 2>/dev/null || echo none)
    "$QLORA" run "$ROOT/pipelines/tiny.yaml" --run-dir "$run" --ci > "$run.2.log" 2>&1 || true
    same=0
    [ "$(sha256sum < "$run/train/adapter_model.safetensors")" = "$ref_adapter" ] && [ "$(losses "$run")" = "$ref_losses" ] \
      && "$QLORA" verify "$run/package/tiny.tar.gz" > /dev/null 2>&1 && same=1
    if [ "$stage" = package ]; then expected=0; expected_status=succeeded; else expected=75; expected_status=interrupted; fi
    if [ "$status" -eq "$expected" ] && [ "$summary_status" = "$expected_status" ] && [ "$same" -eq 1 ]; then
      ok "SIGTERM during $stage: exit $status ($summary_status), the rerun ends with the same adapter and losses, archive verifies"
    else
      bad "SIGTERM during $stage: exit $status, summary $summary_status, same result $same; $(tail -2 "$run.1.log")"
    fi
  done
else
  echo "SKIP: training kill tests (models/SmolLM2-135M-Instruct.Q4_1.gguf not fetched; make test fetches it)"
fi

echo "crash-test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
