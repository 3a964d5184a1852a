#!/usr/bin/env bash
# Fault injection (docs/RELIABILITY.md): random kills in every stage, a full disk in every stage, a read-only run
# directory, corrupted outputs and checkpoints; after each, `qlora run` must complete with the same results as an
# uninterrupted run, or fail with a clear message and no earlier output lost.
#
# Usage: scripts/fault-inject.sh [--kills N] [--seed S] [QLORA]     (defaults: 200 kills, seed 1, .build/release/qlora)
#        `make fault-inject` runs the full suite; `make test` runs `--kills 24`.
#
# The pipeline is small but complete: a random 2-layer LLaMA with SmolLM2's vocabulary (scripts/make_tiny_llama.py,
# needs numpy), the committed SmolLM2 tokenizer, the repository's datasets plus a generated 4 MB one (so ingest and
# tokenize last long enough to be hit), 4 training steps with a checkpoint after each, evaluation and a tar.gz.
#
# 1. Kills: runs are grouped in lineages of 1-3 kills each (SIGKILL or SIGTERM, chosen at random), each aimed at a
#    stage that is not yet done (chosen at random), at a random point of that stage (a uniform delay within its
#    duration in the reference run, after its temporary directory appears); then the lineage runs to completion.
#    After every kill, no stage committed before it is lost; at the end, every stage output equals the reference
#    run's byte for byte, except the files that carry timings (a fixed list, printed; any other output that differs
#    between two uninterrupted runs fails the check). The adapter and the losses are compared always. Each kill is counted in the stage whose temporary directory
#    existed when the signal was sent.
# 2. Disk full: for each stage, the run directory (with the stages before it done) is moved to a tmpfs with room
#    for about half of that stage's output: the run fails with "No space left on device" naming a path, the earlier
#    stages still verify, and after the tmpfs grows the rerun completes identical to the reference.
# 3. Read-only: the run directory's file system remounted read-only fails the run with a clear message; remounted
#    read-write, the rerun completes identical.
# 4. Corruption between runs: one byte of an output of each stage flipped (the next run redoes that stage and
#    ends identical); the newest checkpoint truncated after a kill (skipped, the previous one used, identical).
# Needs root for the tmpfs mounts (sections 2 and 3 are skipped otherwise).
set -euo pipefail
KILLS=200 SEED=1
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) KILLS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    *) break ;;
  esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
QLORA=$(realpath "${1:-$ROOT/.build/release/qlora}")
WORK=$(mktemp -d /tmp/qlora-faults.XXXXXX)
MOUNTS=()
cleanup() {
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
RANDOM=$SEED
STAGES=(ingest tokenize prepare train evaluate package)
pass=0; fail=0
ok()  { echo "PASS: $*"; pass=$((pass+1)); }
bad() { echo "FAIL: $*"; fail=$((fail+1)); }

# --- The pipeline ---------------------------------------------------------------------------------------------
python3 "$ROOT/scripts/make_tiny_llama.py" "$WORK/model" > /dev/null
"$QLORA" bench ingest --generate-only --size-mb 4 --file "$WORK/generated.jsonl" > /dev/null
cat > "$WORK/spec.yaml" <<YAML
name: faults
seed: 7
dataset:
  files:
    - {path: $ROOT/datasets/chatterbot-chat.jsonl, format: chat}
    - {path: $ROOT/datasets/gsm8k-alpaca.jsonl, format: alpaca}
    - {path: $ROOT/datasets/chatterbot-completion.csv, format: completion}
    - {path: $WORK/generated.jsonl, format: alpaca}
  eval_fraction: 0.02
tokenizer:
  path: $ROOT/Tests/QLoRATokenizerTests/Fixtures/smollm2
  chat_template: model
  max_seq_len: 256
  overlength: drop
  max_dropped_fraction: 0.9
model: {path: $WORK/model}
quantization: {quant_type: nf4, double_quant: true}
lora: {lora_rank: 4, lora_alpha: 8, lora_dropout: 0.05}
training: {learning_rate: 0.001, max_steps: 4, batch_size: 2, save_every: 1, keep_checkpoints: 2}
evaluation:
  tasks: [{path: $ROOT/datasets/arc-easy-sample.jsonl, name: arc_easy, limit: 4}]
  prompts: [What is 2+2?]
  max_new_tokens: 8
  max_eval_sequences: 4
package: {archive: tar.gz}
YAML
run_qlora() { "$QLORA" run "$WORK/spec.yaml" --run-dir "$@" --ci; }
# In the background: qlora itself, not a subshell around it, so that $! is the process the signal is meant for.
start_qlora() { local run=$1 log=$2; "$QLORA" run "$WORK/spec.yaml" --run-dir "$run" --ci > "$log" 2>&1 & }

# Hashes of every stage output, one line per file.
hashes() { (cd "$1" && find "${STAGES[@]}" -type f 2>/dev/null | LC_ALL=C sort | xargs -r sha256sum); }

# --- Reference runs and the outputs that carry timings --------------------------------------------------------
run_qlora "$WORK/ref" > "$WORK/ref.log" 2>&1
run_qlora "$WORK/ref2" > "$WORK/ref2.log" 2>&1
hashes "$WORK/ref" > "$WORK/ref.sha"
hashes "$WORK/ref2" > "$WORK/ref2.sha"
# The outputs that carry timings, durations or measured memory (and the package files that record their digests);
# two runs can agree on them by chance (a report's "0.3 s"), so the list is fixed, and any other output that differs
# between the two uninterrupted runs is added to it and reported as a failure (it should be deterministic).
TIMED="evaluate/manifest.json evaluate/report.json evaluate/report.md ingest/manifest.json package/adapter-manifest.json
package/faults.tar.gz package/manifest.json prepare/manifest.json prepare/memory.json tokenize/manifest.json
train/manifest.json train/metrics.jsonl"
DIFFERING=$({ diff "$WORK/ref.sha" "$WORK/ref2.sha" || true; } | sed -n 's/^< [0-9a-f]*  //p' | LC_ALL=C sort)
UNEXPECTED=$(comm -23 <(printf '%s\n' $DIFFERING | LC_ALL=C sort -u) <(printf '%s\n' $TIMED | LC_ALL=C sort -u) | grep . || true)
VARYING=$(printf '%s\n' $TIMED $DIFFERING | LC_ALL=C sort -u)
fixed_outputs() { grep -v -F -f <(printf '%s\n' $VARYING) || true; }
fixed_outputs < "$WORK/ref.sha" > "$WORK/ref.fixed.sha"
echo "outputs compared without their bytes (they carry timings, durations or measured memory):"
printf '  %s\n' $VARYING
if [ -n "$UNEXPECTED" ]; then bad "outputs that differ between two uninterrupted runs and carry no timing: $(echo $UNEXPECTED)"; fi
ADAPTER=$(sha256sum < "$WORK/ref/train/adapter_model.safetensors")
LOSSES=$(python3 -c 'import json,sys; print([json.loads(l)["loss"] for l in open(sys.argv[1])])' "$WORK/ref/train/metrics.jsonl")
declare -A DURATION
while read -r stage seconds; do DURATION[$stage]=$seconds; done < <(python3 -c '
import json, sys
for s in json.load(open(sys.argv[1]))["stages"]: print(s["stage"], s["duration_seconds"])' "$WORK/ref/summary.json")
echo "reference stage durations (s): $(for s in "${STAGES[@]}"; do printf '%s %.2f  ' "$s" "${DURATION[$s]}"; done)"

# Same results as the reference: every output that carries no timing byte-identical, the adapter and the losses.
same_as_reference() {
  local run=$1
  hashes "$run" | fixed_outputs | diff -q - "$WORK/ref.fixed.sha" > /dev/null \
    && [ "$(sha256sum < "$run/train/adapter_model.safetensors")" = "$ADAPTER" ] \
    && [ "$(python3 -c 'import json,sys; print([json.loads(l)["loss"] for l in open(sys.argv[1])])' "$run/train/metrics.jsonl")" = "$LOSSES" ] \
    && "$QLORA" verify "$run/package/faults.tar.gz" > /dev/null 2>&1
}
committed() { for s in "${STAGES[@]}"; do [ -f "$1/$s/manifest.json" ] && printf '%s ' "$s"; done; true; }

# --- 1. Random kills ------------------------------------------------------------------------------------------
declare -A KILLED
kills=0 lineages=0 lineage_fail=0 lost=0 missed=0
while [ "$kills" -lt "$KILLS" ]; do
  lineages=$((lineages+1))
  run="$WORK/k$lineages"
  want=$((1 + RANDOM % 3))
  for _ in $(seq 1 "$want"); do
    done_before=$(committed "$run")
    pending=(); for s in "${STAGES[@]}"; do [[ " $done_before " == *" $s "* ]] || pending+=("$s"); done
    [ ${#pending[@]} -gt 0 ] || break
    stage=${pending[$((RANDOM % ${#pending[@]}))]}
    signal=$([ $((RANDOM % 4)) -eq 0 ] && echo TERM || echo KILL)
    delay=$(python3 -c "import sys; print(f'{float(sys.argv[1]) * int(sys.argv[2]) / 32768:.3f}')" "${DURATION[$stage]}" "$RANDOM")
    start_qlora "$run" "$run.$kills.log"
    pid=$!
    while kill -0 "$pid" 2>/dev/null && ! compgen -G "$run/$stage.tmp-*" > /dev/null; do sleep 0.002; done
    sleep "$delay"
    running=$(cd "$run" 2>/dev/null && compgen -G "*.tmp-*" | sed 's/\.tmp-.*//' | head -1 || true)
    if kill -"$signal" "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      kills=$((kills+1))
      key="${running:-between}/$signal"
      KILLED[$key]=$(( ${KILLED[$key]:-0} + 1 ))
      for s in $done_before; do
        [ -f "$run/$s/manifest.json" ] || { lost=$((lost+1)); echo "  lost: stage $s of $run after a $signal in ${running:-between}"; }
      done
    else
      wait "$pid" 2>/dev/null || true
      missed=$((missed+1))
    fi
  done
  if ! run_qlora "$run" > "$run.final.log" 2>&1 || ! same_as_reference "$run"; then
    lineage_fail=$((lineage_fail+1))
    echo "  lineage $lineages did not end identical: $(tail -2 "$run.final.log" | tr '\n' ' ')"
  else
    rm -rf "$run" "$run".*.log
  fi
done
echo "kills by stage and signal (stage whose temporary directory existed when the signal was sent):"
for s in "${STAGES[@]}" between; do printf '  %-9s KILL %3d  TERM %3d\n' "$s" "${KILLED[$s/KILL]:-0}" "${KILLED[$s/TERM]:-0}"; done
echo "  ($missed signals not sent: the run had already finished)"
[ "$lost" -eq 0 ] && ok "no committed stage lost in $kills kills" || bad "$lost committed stages lost"
if [ "$lineage_fail" -eq 0 ]; then ok "$kills kills in $lineages lineages: every lineage completed identical to the reference"
else bad "$lineage_fail of $lineages lineages did not end identical"; fi

# --- 2. Disk full in every stage, 3. read-only run directory --------------------------------------------------
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=1m tmpfs "$(mkdir -p "$WORK/probe" && echo "$WORK/probe")" 2>/dev/null; then
  umount "$WORK/probe"
  previous="" previous_list=""
  for stage in "${STAGES[@]}"; do
    base="$WORK/full-$stage-base"
    if [ -n "$previous" ]; then run_qlora "$base" --to "$previous" > "$base.log" 2>&1; else mkdir -p "$base"; fi
    mnt="$WORK/full-$stage"
    mkdir -p "$mnt"
    need_kb=$(du -sk "$WORK/ref/$stage" | cut -f1)
    mount -t tmpfs -o size=256m tmpfs "$mnt"
    MOUNTS+=("$mnt")
    cp -a "$base" "$mnt/run"
    # Room for about half of what this stage writes (tmpfs counts whole pages, so measure after the copy).
    used_kb=$(df -k --output=used "$mnt" | tail -1 | tr -d ' ')
    mount -o remount,size=$(( used_kb + need_kb / 2 ))k "$mnt"
    set +e; run_qlora "$mnt/run" > "$mnt.log" 2>&1; status=$?; set -e
    message=$(grep -m1 -i "no space left" "$mnt.log" || true)
    verified=1
    for s in $previous_list; do
      { "$QLORA" status "$mnt/run" --json --verify 2>/dev/null || true; } | python3 -c '
import json, sys
stages = {s["stage"]: s for s in json.load(sys.stdin)["stages"]}
sys.exit(0 if stages[sys.argv[1]]["state"] == "complete" else 1)' "$s" || verified=0
    done
    mount -o remount,size=256m "$mnt"
    run_qlora "$mnt/run" > "$mnt.2.log" 2>&1 && same=1 || same=0
    [ "$same" -eq 1 ] && { same_as_reference "$mnt/run" || same=0; }
    if [ "$status" -ne 0 ] && [ -n "$message" ] && [[ "$message" == */* ]] && [ "$verified" -eq 1 ] && [ "$same" -eq 1 ]; then
      ok "disk full in $stage: exit $status, \"$(echo "$message" | cut -c1-150)\"; earlier stages verify; after freeing space the rerun is identical"
    else
      bad "disk full in $stage: exit $status, message '${message:-none}', earlier stages verify $verified, rerun identical $same; $(tail -3 "$mnt.log" | tr '\n' ' ')"
    fi
    umount "$mnt"; MOUNTS=("${MOUNTS[@]/$mnt}")
    previous=$stage
    previous_list="${previous_list:-} $stage"
  done

  mnt="$WORK/readonly"
  mkdir -p "$mnt"
  mount -t tmpfs -o size=256m tmpfs "$mnt"; MOUNTS+=("$mnt")
  run_qlora "$mnt/run" --to tokenize > "$mnt.0.log" 2>&1
  mount -o remount,ro "$mnt"
  set +e; run_qlora "$mnt/run" > "$mnt.log" 2>&1; status=$?; set -e
  mount -o remount,rw "$mnt"
  run_qlora "$mnt/run" > "$mnt.2.log" 2>&1 && same_as_reference "$mnt/run" && same=1 || same=0
  message=$(grep -m1 -i "read-only file system" "$mnt.log" || true)
  if [ "$status" -ne 0 ] && [ -n "$message" ] && [ "$same" -eq 1 ]; then
    ok "read-only run directory: exit $status, \"$(echo "$message" | cut -c1-150)\"; read-write again, the rerun is identical"
  else
    bad "read-only run directory: exit $status, message '${message:-none}', rerun identical $same; $(tail -3 "$mnt.log" | tr '\n' ' ')"
  fi
  umount "$mnt"; MOUNTS=()
else
  echo "SKIP: disk-full and read-only checks (need root and tmpfs mounts)"
fi

# --- 4. Corruption between runs -------------------------------------------------------------------------------
for stage in "${STAGES[@]}"; do
  run="$WORK/corrupt-$stage"
  cp -a "$WORK/ref" "$run"
  file=$(cd "$run/$stage" && find . -type f ! -name manifest.json | LC_ALL=C sort | sed -n "$((1 + RANDOM % $(find . -type f ! -name manifest.json | wc -l)))p")
  size=$(stat -c %s "$run/$stage/$file")
  offset=$(( size > 0 ? RANDOM * 32768 % size : 0 ))
  byte=$(od -An -tu1 -j "$offset" -N1 "$run/$stage/$file" | tr -d ' ')
  printf "\\$(printf %03o $(( (byte + 1) % 256 )))" | dd of="$run/$stage/$file" bs=1 seek="$offset" conv=notrunc status=none
  run_qlora "$run" > "$run.log" 2>&1 && same_as_reference "$run" && grep -q "$stage .*running: output" "$run.log" \
    && ok "corrupted $stage/${file#./} (byte $offset): detected, the stage redone, identical" \
    || bad "corrupted $stage/${file#./}: $(grep -m2 "$stage " "$run.log" | tr '\n' ' ')"
done
run="$WORK/corrupt-checkpoint"
start_qlora "$run" "$run.1.log"
pid=$!
while kill -0 "$pid" 2>/dev/null && [ ! -d "$run/train.checkpoints/step-00000002" ]; do sleep 0.01; done
kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
newest=$(ls -d "$run"/train.checkpoints/step-* | LC_ALL=C sort | tail -1)
victim=$(find "$newest" -type f | LC_ALL=C sort | head -1)
truncate -s $(( $(stat -c %s "$victim") / 2 )) "$victim"
run_qlora "$run" > "$run.2.log" 2>&1 && same_as_reference "$run" && grep -q "$(basename "$newest") is unusable" "$run.2.log" \
  && ok "truncated $(basename "$newest")/$(basename "$victim"): skipped, resumed from the previous checkpoint, identical" \
  || bad "truncated checkpoint: $(grep -h "resumed\|unusable" "$run.2.log" | head -2 | tr '\n' ' ')"

echo "fault-inject: $pass passed, $fail failed ($kills kills)"
[ "$fail" -eq 0 ]
