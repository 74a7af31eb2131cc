# lib-mgr.sh - sourced by the manager's integration scripts after lib.sh:
# the checks they share for the invariant that every selected test gets
# exactly one final result.

FAKE="$DM_TOP/tests/integration/mgr-fake-worker.py"
# Under check-asan a worker's in-process SIGSEGV must kill it as it would
# a user's, not be caught by the sanitizer's own handler.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0"
export ASAN_OPTIONS

# closing TEXT : the closing line, "distmgr: 3 passed, 1 failed in 0.2s"
closing() {
	printf '%s\n' "$1" | grep -E '^distmgr: ([0-9]+ [a-z]|no tests ran)' |
	    tail -n 1 | sed 's/ in [0-9.]*s$//'
}

# vlines TEXT : the -v result lines, "[w3] PASS id (...)"
vlines() {
	printf '%s\n' "$1" | grep -E '^\[[^]]*\] [A-Z]+ [^ ]+'
}

# each_once TEXT IDFILE WHAT : every id in IDFILE (one a line) has exactly
# one -v result line, and there are no others.
each_once() {
	_bad=$(vlines "$1" | awk -v idf="$2" '
	    BEGIN { while ((getline l < idf) > 0) { want[l] = 1; n++ } }
	    { seen[$3]++ }
	    END {
		for (i in want) if (seen[i] != 1) {
			print i " seen " (seen[i] + 0) " times"; bad = 1 }
		for (i in seen) if (!(i in want)) {
			print "unexpected " i; bad = 1 }
	    }')
	if [ -z "$_bad" ]; then
		ok "$3"
	else
		not_ok "$3"
		printf '%s\n' "$_bad" | head -n 10 | sed 's/^/#   /'
	fi
}

# sum_is TEXT N WHAT : the closing line's counts add up to N
sum_is() {
	_sum=$(closing "$1" | sed 's/^distmgr: //' | tr ',' '\n' |
	    awk '{ s += $1 } END { print s + 0 }')
	is "$_sum" "$2" "$3"
}

# pids TEXT : the worker pids of the -v node lines
pids() {
	printf '%s\n' "$1" | sed -n 's/^\[w[0-9]*\] .* pid \([0-9]*\),.*/\1/p'
}

# none_alive PIDS WHAT : none of these processes is left
none_alive() {
	_left=""
	for _p in $1; do
		kill -0 "$_p" 2>/dev/null && _left="$_left $_p"
	done
	is "$_left" "" "$2"
}

# bg SECONDS CMD... : starts CMD in the background with stdout in
# $T_TMP/bg.out and stderr in $T_TMP/bg.err; BG is its pid (signals go
# to it, not to a wrapper), and a watchdog kills it after SECONDS.
bg() {
	_t=$1
	shift
	# Emptied here, before the job starts, so that wait_for cannot read
	# the last run's output.
	: >"$T_TMP/bg.out"
	: >"$T_TMP/bg.err"
	"$@" >>"$T_TMP/bg.out" 2>>"$T_TMP/bg.err" &
	BG=$!
	( sleep "$_t"; kill -9 "$BG" 2>/dev/null ) >/dev/null 2>&1 &
	BG_DOG=$!
}

# bg_wait : waits for it; sets RC, OUT, ERR
bg_wait() {
	wait "$BG"
	RC=$?
	kill "$BG_DOG" 2>/dev/null
	OUT=$(cat "$T_TMP/bg.out")
	ERR=$(cat "$T_TMP/bg.err")
}

# workers_of PID : the worker processes of a distmgr
workers_of() {
	pgrep -P "$1" | tr '\n' ' '
}

# wait_for FILE TEXT : until FILE holds TEXT (at most 10 s)
wait_for() {
	_i=0
	while ! grep -qF -- "$2" "$1" 2>/dev/null && [ "$_i" -lt 100 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
}

# stopped_ok TEXT N : after one worker was SIGSTOPped: it was found hung,
# and it cost at most the test it was running (none if it was stopped
# between two tests), which then says why.
stopped_ok() {
	like "$1" "stopped answering" "a stopped worker is found by its heartbeat"
	sum_is "$1" "$2" "a stopped worker: every test is counted"
	case "$(closing "$1")" in
	"distmgr: $2 passed")
		ok "a stopped worker idle between tests costs no test" ;;
	"distmgr: $(($2 - 1)) passed, 1 crashed")
		like "$(vlines "$1" | grep CRASH)" "stopped answering" \
		    "a stopped worker costs only its test, which says why" ;;
	*)
		not_ok "a stopped worker costs at most one test"
		echo "#   got: $(closing "$1")" ;;
	esac
}
