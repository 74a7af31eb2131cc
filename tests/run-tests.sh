#!/bin/sh
# run-tests.sh BUILD - run every test and end with one line that says how
# many passed and failed: the Check unit programs, the integration
# scripts (which print TAP lines), and the man-page lint.
#
# Each program's own output goes to BUILD/test-logs/NAME.log; a failing
# program's log is printed, so a CI log shows what broke.
set -u
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
logs="$build/test-logs"
mkdir -p "$logs"
export DM_BUILD="$top/$build" DM_TOP="$top"
passed=0
failed=0
failed_names=""

note_fail() {
	failed_names="$failed_names $1"
	echo "---- $1 (log: $logs/$1.log) ----"
	tail -n 60 "$logs/$1.log"
	echo "----"
}

# Check programs print "NN%: Checks: N, Failures: F, Errors: E".
for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-60} "$t" >"$logs/$name.log" 2>&1
	rc=$?
	line=$(grep -E '^[0-9]+%: Checks: ' "$logs/$name.log" | tail -n 1)
	n=$(echo "$line" | sed -n 's/.*Checks: \([0-9]*\).*/\1/p')
	f=$(echo "$line" | sed -n 's/.*Failures: \([0-9]*\).*/\1/p')
	e=$(echo "$line" | sed -n 's/.*Errors: \([0-9]*\).*/\1/p')
	if [ -z "$n" ]; then
		echo "FAIL $name: no Check summary (exit $rc)"
		failed=$((failed + 1))
		note_fail "$name"
		continue
	fi
	bad=$((f + e))
	passed=$((passed + n - bad))
	failed=$((failed + bad))
	if [ "$bad" -gt 0 ] || [ "$rc" -ne 0 ]; then
		[ "$bad" -eq 0 ] && failed=$((failed + 1))
		echo "FAIL $name: $line (exit $rc)"
		note_fail "$name"
	else
		echo "ok   $name: $n checks"
	fi
done

# Integration scripts print TAP: "ok N - what" / "not ok N - what".
for t in tests/integration/*.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .sh)
	case "$name" in lib*) continue ;; esac
	sh "$t" >"$logs/$name.log" 2>&1
	rc=$?
	n_ok=$(grep -c '^ok ' "$logs/$name.log")
	n_bad=$(grep -c '^not ok ' "$logs/$name.log")
	passed=$((passed + n_ok))
	failed=$((failed + n_bad))
	if [ "$n_bad" -gt 0 ] || [ "$rc" -ne 0 ] || [ "$n_ok" -eq 0 ]; then
		[ "$n_bad" -eq 0 ] && failed=$((failed + 1))
		echo "FAIL $name: $n_ok ok, $n_bad not ok (exit $rc)"
		note_fail "$name"
	else
		echo "ok   $name: $n_ok checks"
	fi
done

# Man pages must be mandoc -Tlint clean.
for m in man/*.[1-8]; do
	[ -f "$m" ] || continue
	name="man-$(basename "$m")"
	if mandoc -Tlint -W warning "$m" >"$logs/$name.log" 2>&1; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAIL $name: mandoc -Tlint"
		note_fail "$name"
	fi
done

if [ "$failed" -gt 0 ]; then
	echo "make check: $passed passed, $failed failed:$failed_names"
	exit 1
fi
echo "make check: $passed passed, $failed failed"
