#!/usr/bin/env bash
# The fuzzing suite (docs/RELIABILITY.md): every reader of untrusted bytes under libFuzzer + AddressSanitizer.
#
#   scripts/fuzz.sh build                 build .build/fuzz/release/qlora-fuzz (-sanitize=fuzzer,address)
#   scripts/fuzz.sh run SECONDS [TARGET…] fuzz each target (default: all) for SECONDS, one after another
#   scripts/fuzz.sh list                  the targets
#
# `make fuzz` runs every target for $FUZZ_SECONDS (600 by default, the acceptance figure); `make test` runs each
# for 30 s. Seeds come from fuzz/corpus/<target>/ (committed, read-only here); what a run learns goes to
# .build/fuzz-corpus/<target>/ (kept between runs, not committed). A crash, timeout or out-of-memory leaves its
# input in fuzz/findings/<target>/ and fails the script: reproduce it with
# `swift run -c release qlora-fuzz TARGET FILE`, fix the reader, and move the input to fuzz/regressions/<target>/
# so FuzzCorpusTests replays it on every test run. The report (execs/s, coverage per target) is written to
# .build/fuzz-report.txt and printed.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.build/fuzz/release/qlora-fuzz
TARGETS=(spec jsonl json csv jsonl-gz tokenizer-json tokenizer-config chat-template safetensors gguf bnb-4bit peft-adapter
         archive token-file)

max_len() {
    case "$1" in
        gguf|safetensors|bnb-4bit|peft-adapter|archive|token-file|jsonl-gz|tokenizer-json) echo 65536 ;;
        *) echo 16384 ;;
    esac
}

build() {
    swift build -c release --build-path .build/fuzz --product qlora-fuzz \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -DQLORA_LIBFUZZER -Xswiftc -use-ld=lld
}

run() {
    local seconds=$1; shift
    local targets=("$@")
    [ ${#targets[@]} -gt 0 ] || targets=("${TARGETS[@]}")
    [ -x "$BIN" ] || build
    local report=.build/fuzz-report.txt failed=0
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/qlora-fuzz.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
    printf '%-17s %8s %10s %9s %7s %7s  %s\n' target seconds execs execs/s cov ft result > "$report"
    for t in "${targets[@]}"; do
        local work=.build/fuzz-corpus/$t findings=fuzz/findings/$t log=.build/fuzz-logs/$t.log
        mkdir -p "$work" "$findings" "$(dirname "$log")"
        echo "fuzzing $t for ${seconds}s"
        local status=0
        QLORA_FUZZ_TARGET=$t QLORA_FUZZ_SCRATCH=$scratch SWIFT_BACKTRACE=enable=no \
            ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
            "$BIN" "$work" "fuzz/corpus/$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 \
            -rss_limit_mb=2560 -malloc_limit_mb=2048 -artifact_prefix="$findings/" -print_final_stats=1 \
            -close_fd_mask=1 > "$log" 2>&1 || status=$?
        local execs rate cov ft result
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
        ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
        if [ "$status" -eq 0 ]; then result=ok; else
            result="FAILED (exit $status; $(grep -m1 -oE 'ERROR: [^ ]+ [^ ]+|SUMMARY: .*|Test unit written to .*' "$log" | head -1))"
            failed=1
            tail -40 "$log"
        fi
        printf '%-17s %8s %10s %9s %7s %7s  %s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$result" | tee -a "$report"
        rmdir "$findings" 2>/dev/null || true
    done
    echo
    cat "$report"
    return $failed
}

case "${1:-}" in
    build) build ;;
    run) shift; run "$@" ;;
    list) printf '%s\n' "${TARGETS[@]}" ;;
    *) echo "usage: $0 build | run SECONDS [TARGET...] | list" >&2; exit 2 ;;
esac
