# lib.sh - sourced by the integration scripts. They run the real binaries
# and print TAP lines ("ok N - what", "not ok N - what") that
# tests/run-tests.sh counts. Every command runs under a timeout so that a
# hang is a failure, never a stuck CI.
#
#   . "$(dirname "$0")/lib.sh"
#   run 10 "$BIN/distmgr" -j 2 "$SUITES/basic.so"   # sets OUT ERR RC
#   is "$RC" 1 "exit code 1 when a test fails"
#   like "$OUT" "1 failed" "summary names the failure"

: "${DM_BUILD:?run through make check (DM_BUILD unset)}"
: "${DM_TOP:?run through make check (DM_TOP unset)}"
BIN="$DM_BUILD/bin"
SUITES="$DM_BUILD/suites"
T_N=0
T_FAILED=0
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/dmtest.XXXXXX")
trap 'rm -rf "$T_TMP"' EXIT
export NO_COLOR=1

ok() {
	T_N=$((T_N + 1))
	echo "ok $T_N - $*"
}

not_ok() {
	T_N=$((T_N + 1))
	T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_N - $*"
}

# run SECONDS CMD ARGS... : OUT and ERR hold stdout and stderr, RC the exit
# status (124 when the timeout hit).
run() {
	_t=$1
	shift
	timeout -k 5 "$_t" "$@" >"$T_TMP/out" 2>"$T_TMP/err"
	RC=$?
	OUT=$(cat "$T_TMP/out")
	ERR=$(cat "$T_TMP/err")
}

# is GOT WANT WHAT
is() {
	if [ "$1" = "$2" ]; then
		ok "$3"
	else
		not_ok "$3"
		echo "#   got:  '$1'"
		echo "#   want: '$2'"
	fi
}

# like TEXT SUBSTRING WHAT (fixed string, not a pattern)
like() {
	case "$1" in
	*"$2"*) ok "$3" ;;
	*)
		not_ok "$3"
		echo "#   wanted to find: '$2'"
		echo "$1" | head -n 30 | sed 's/^/#   | /'
		;;
	esac
}

# unlike TEXT SUBSTRING WHAT
unlike() {
	case "$1" in
	*"$2"*)
		not_ok "$3"
		echo "#   did not want: '$2'"
		echo "$1" | head -n 30 | sed 's/^/#   | /'
		;;
	*) ok "$3" ;;
	esac
}

# count TEXT SUBSTRING : how many lines hold the substring
count() {
	printf '%s\n' "$1" | grep -cF -- "$2"
}

# done_testing : exit status says whether all passed
done_testing() {
	[ "$T_N" -gt 0 ] || { echo "not ok 1 - no tests ran"; exit 1; }
	[ "$T_FAILED" -eq 0 ]
}
