#!/bin/sh
# smoke.sh BUILD_DIR SECONDS - run each libFuzzer harness BUILD_DIR/fuzz_*
# for SECONDS on a scratch copy of its seed corpus (fuzz/corpus/NAME), so
# the committed corpus never changes under a run. Prints how many inputs
# each executed (from libFuzzer's final stats) and fails if any crashed,
# leaked, hung (over 10 s on one input) or tripped UBSan. A crashing input
# is kept in BUILD_DIR/fuzz-artifacts/ and its log is shown.
set -u
build=${1:?usage: smoke.sh BUILD_DIR SECONDS}
secs=${2:?usage: smoke.sh BUILD_DIR SECONDS}
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/dmfuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
artifacts="$build/fuzz-artifacts"
# UBSan only reports unless told to stop; a report must fail the run.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
status=0
found=0

for bin in "$build"/fuzz_*; do
	[ -x "$bin" ] || continue
	found=1
	name=$(basename "$bin")
	corpus="$work/$name"
	mkdir -p "$corpus" "$work/$name.art"
	if [ -d "$top/fuzz/corpus/$name" ]; then
		cp "$top/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null
	fi
	log="$work/$name.log"
	"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 \
	    -rss_limit_mb=2048 -artifact_prefix="$work/$name.art/" \
	    "$corpus" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
	    tail -n 1)
	corp=$(ls "$corpus" | wc -l)
	if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
		echo "$name: $execs executions in ${secs}s, corpus $corp inputs," \
		    "no crash"
		continue
	fi
	status=1
	echo "$name: FAILED (exit $rc) after ${execs:-?} executions"
	grep -E 'ERROR|SUMMARY|fuzz_[a-z]+: |runtime error|Test unit' "$log" |
	    head -n 20
	if ls "$work/$name.art"/* >/dev/null 2>&1; then
		mkdir -p "$artifacts"
		cp "$work/$name.art"/* "$artifacts"/
		echo "$name: crashing input(s) kept in $artifacts/:"
		ls "$work/$name.art"
	fi
	echo "---- last lines of the log ----"
	tail -n 40 "$log"
	echo "----"
done

if [ "$found" -eq 0 ]; then
	echo "smoke.sh: no fuzz_* harness in $build (run make fuzz)" >&2
	exit 1
fi
exit $status
