#!/usr/bin/env bash
# The test suite under a sanitizer (docs/RELIABILITY.md): `scripts/sanitize.sh address|thread [swift test args…]`.
#
# Builds everything (Swift and C targets, the qlora binary the CLI tests run included) with -sanitize=MODE into
# .build/MODE, runs the whole suite, and fails on a failed test or any sanitizer report. The log is kept in
# .build/sanitize-MODE.log. Release mode (-O) with sanitizers: the numeric tests are ~100x slower in debug builds.
# ASan runs with detect_leaks=0 (LeakSanitizer reports the Swift runtime's never-freed metadata caches);
# TSan with halt_on_error=0 so one run lists every report.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: scripts/sanitize.sh address|thread [swift test args...]}
shift
log=.build/sanitize-$mode.log
flags=(-c release --build-path ".build/$mode" -Xswiftc -enable-testing --sanitize="$mode")
swift build "${flags[@]}" --build-tests
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1
# Read by the one test that skips a leg under TSan (CLITests.checkReferenceBackend: single-threaded scalar code).
export QLORA_SANITIZER=$mode
mkdir -p .build
status=0
swift test "${flags[@]}" --skip-build "$@" 2>&1 | tee "$log" || status=$?
reports=$(grep -cE "^(==[0-9]+==ERROR: AddressSanitizer|WARNING: ThreadSanitizer|SUMMARY: (Address|Thread)Sanitizer)" "$log" || true)
echo "sanitize $mode: swift test exit $status, $reports sanitizer report lines (log: $log)"
[ "$status" -eq 0 ] && [ "$reports" -eq 0 ]
