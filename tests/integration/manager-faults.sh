#!/bin/sh
# manager-faults.sh - distmgr against a scripted worker that misbehaves on
# request (tests/integration/mgr-fake-worker.py): workers that die, hang,
# send a result twice or disagree on the test list, stopping, Ctrl-C, and
# the errors a user can make. Under every fault: the closing line's counts
# add up to the selected tests and each test has exactly one result line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mgr.sh"

if ! command -v python3 >/dev/null 2>&1; then
	echo "ok 1 - # SKIP no python3 for the scripted worker"
	exit 0
fi
DM="$BIN/distmgr"
W="--worker $FAKE --no-cache"
cd "$T_TMP" || exit 1

# suite NAME LINES... : a fake suite file and its id list NAME.ids
suite() {
	_n=$1
	shift
	: >"$_n"
	for _l in "$@"; do
		echo "$_l" >>"$_n"
	done
	cut -d' ' -f1 "$_n" >"$_n.ids"
}

many() {	# many PREFIX N OUTCOME SECONDS
	_i=1
	while [ "$_i" -le "$2" ]; do
		echo "$1$_i $3 $4"
		_i=$((_i + 1))
	done
}

# ---- a plain run -----------------------------------------------------------
many m/t 20 pass 0.01 >basic
echo "m/bad fail 0.01 expected 1 got 2" >>basic
echo "m/sk skip 0 later" >>basic
cut -d' ' -f1 basic >basic.ids
run 30 "$DM" $W -j 3 -v basic
is "$RC" 1 "a failure exits 1"
is "$(closing "$OUT")" "distmgr: 20 passed, 1 failed, 1 skipped" \
    "closing line counts each outcome"
each_once "$OUT" basic.ids "each test has one result line"
is "$(pids "$OUT" | wc -l | tr -d ' ')" 3 "-v prints a line per worker"
like "$OUT" "popen -- linux x86_64, 2 cpus, pid" "node line names the worker"

# ---- a result sent twice ---------------------------------------------------
suite dup "d/a pass 0.01" "d/twice dup 0.01" "d/b pass 0.01"
run 30 "$DM" $W -j 2 -v dup
is "$RC" 0 "a doubled result: still exit 0"
is "$(closing "$OUT")" "distmgr: 3 passed" "a doubled result counts once"
each_once "$OUT" dup.ids "a doubled result is reported once"

# ---- a worker that dies mid-batch ------------------------------------------
{ many k/a 15 pass 0.01; echo "k/die die 0.01"; many k/b 15 pass 0.01; } >die
cut -d' ' -f1 die >die.ids
run 30 "$DM" $W -j 2 -v die
is "$RC" 1 "a crash exits 1"
is "$(closing "$OUT")" "distmgr: 30 passed, 1 crashed" \
    "the dead worker's other tests ran elsewhere"
each_once "$OUT" die.ids "after a worker death each test has one result"
like "$(vlines "$OUT" | grep k/die)" "killed by signal 9" \
    "the crash names the signal"
like "$(vlines "$OUT" | grep k/die)" "dying in k/die" \
    "the crash shows the end of the worker's stderr"
like "$ERR$OUT" "replacing worker" "a replacement worker is started"

# ---- past --max-worker-restart ---------------------------------------------
run 30 "$DM" $W -j 1 --max-worker-restart 0 -v die
is "$RC" 1 "past the restart limit: exit 1 (a test crashed)"
is "$(closing "$OUT")" "distmgr: 15 passed, 1 crashed, 15 not run" \
    "past the restart limit the rest is not run"
each_once "$OUT" die.ids "past the restart limit each test has one result"
like "$ERR$OUT" "no workers left to run the remaining 15 tests" \
    "the user is told why tests did not run"

# ---- reruns ----------------------------------------------------------------
mkdir -p state
suite rr "r/a pass 0.01" "r/flaky flaky 0.01" "r/b pass 0.01" \
    "r/once diehard 0.01" "r/fail fail 0.01 always"
FAKE_STATE=$T_TMP/state run 30 "$DM" $W -j 2 --reruns 2 -v rr
is "$RC" 1 "reruns: a test failing every time still fails"
is "$(closing "$OUT")" "distmgr: 2 passed, 1 failed, 2 flaky" \
    "a test passing on a rerun is flaky, not hidden"
each_once "$OUT" rr.ids "reruns report only the last attempt"
rm -rf state && mkdir state
suite rr2 "r/flaky flaky 0.01" "r/a pass 0.01"
FAKE_STATE=$T_TMP/state run 30 "$DM" $W -j 2 --reruns 1 rr2
is "$RC" 0 "flaky tests alone exit 0"

# ---- a hung worker -----------------------------------------------------------
{ many h/a 5 pass 0.01; echo "h/hang hang 0.01"; many h/b 5 pass 0.01; } >hang
cut -d' ' -f1 hang >hang.ids
run 30 "$DM" $W -j 2 --heartbeat 0.5 -v hang
is "$(closing "$OUT")" "distmgr: 10 passed, 1 crashed" \
    "a hung worker costs only its test"
like "$(vlines "$OUT" | grep h/hang)" "stopped answering" \
    "the hang is named in the test's message"
each_once "$OUT" hang.ids "after a hang each test has one result"
run 30 "$DM" $W -j 2 --no-fork --timeout 1 --heartbeat 0.5 -v hang
is "$(closing "$OUT")" "distmgr: 10 passed, 1 timed out" \
    "in-process, the manager keeps the time limit"
like "$(vlines "$OUT" | grep h/hang)" "timed out after 1 s" \
    "the timeout is named in the test's message"

# ---- workers that disagree on the tests -------------------------------------
FAKE_BAD_HASH=w1 run 30 "$DM" $W -j 3 -v basic
is "$RC" 3 "workers with different lists: exit 3"
like "$ERR$OUT" "worker w1 has another test list than w0" \
    "the disagreeing worker is named"
like "$ERR$OUT" "nothing was run" "the user is told nothing ran"
is "$(vlines "$OUT" | wc -l | tr -d ' ')" 0 "no test ran"

# ---- stopping early ------------------------------------------------------------
{ echo "x/first fail 0.01"; many x/t 30 pass 0.05; } >xf
cut -d' ' -f1 xf >xf.ids
run 30 "$DM" $W -j 1 -x -v xf
is "$RC" 1 "-x exits 1"
like "$OUT$ERR" "stopped after the first failure (-x)" "-x says why it stopped"
like "$(closing "$OUT")" "1 failed" "-x: the failure is counted"
like "$(closing "$OUT")" "not run" "-x: the rest is not run"
sum_is "$OUT" 31 "-x: every test is counted once"
each_once "$OUT" xf.ids "-x: each test has one result line"

# ---- Ctrl-C --------------------------------------------------------------------
many c/t 40 pass 0.2 >cc
cut -d' ' -f1 cc >cc.ids
bg 30 "$DM" $W -j 2 -v cc
wait_for "$T_TMP/bg.out" "PASS c/t"
ws=$(workers_of $BG)
kill -INT $BG
bg_wait
is "$RC" 2 "Ctrl-C exits 2"
sum_is "$OUT" 40 "Ctrl-C: the partial summary counts every test"
like "$(closing "$OUT")" "not run" "Ctrl-C: what did not run is counted"
each_once "$OUT" cc.ids "Ctrl-C: each test has one result line"
sleep 0.3
none_alive "$ws" "Ctrl-C leaves no worker behind"

suite cc2 "c/hang hang 0.01" "c/x pass 0.01"
bg 30 "$DM" $W -j 1 --heartbeat 0 -v cc2
wait_for "$T_TMP/bg.out" "tests from"
ws=$(workers_of $BG)
sleep 0.3
kill -INT $BG
sleep 0.3
kill -INT $BG
bg_wait
is "$RC" 2 "a second Ctrl-C kills at once, exit 2"
sum_is "$OUT" 2 "a second Ctrl-C still counts every test"
is "$(closing "$OUT")" "distmgr: 2 not run" \
    "a test killed by the second Ctrl-C is not run, not crashed"
sleep 0.3
none_alive "$ws" "a second Ctrl-C leaves no worker behind"

# ---- kill -9 and SIGSTOP from outside ---------------------------------------------
# Three seconds of work on two workers: results reach the output file
# once a second, so that much leaves tests for the worker to be killed
# in the middle of, even when a busy machine flushes late.
many o/t 60 pass 0.1 >outside
cut -d' ' -f1 outside >outside.ids
bg 60 "$DM" $W -j 2 -v outside
wait_for "$T_TMP/bg.out" "PASS o/t"
kill -9 $(workers_of $BG | cut -d' ' -f1)
bg_wait
is "$(closing "$OUT")" "distmgr: 59 passed, 1 crashed" \
    "kill -9 of a worker costs one test"
each_once "$OUT" outside.ids "after kill -9 each test has one result line"

bg 60 "$DM" $W -j 2 --heartbeat 1 -v outside
wait_for "$T_TMP/bg.out" "PASS o/t"
victim=$(workers_of $BG | cut -d' ' -f1)
kill -STOP $victim
bg_wait
kill -CONT $victim 2>/dev/null
stopped_ok "$OUT" 60
each_once "$OUT" outside.ids "after SIGSTOP each test has one result line"

# ---- many workers --------------------------------------------------------------------
many n/t 200 pass 0.005 >wide
cut -d' ' -f1 wide >wide.ids
for j in 8 16; do
	run 60 "$DM" $W -j $j -v wide
	is "$(closing "$OUT")" "distmgr: 200 passed" "-j $j: every test passes"
	each_once "$OUT" wide.ids "-j $j: each test has one result line"
done

# ---- --dist each -------------------------------------------------------------------------
suite each "e/a pass 0.01" "e/b fail 0.01" "e/c pass 0.01"
run 30 "$DM" $W -j 3 --dist each -v each
is "$(closing "$OUT")" "distmgr: 6 passed, 3 failed" \
    "--dist each runs every test on every worker"
is "$(vlines "$OUT" | awk '$3 == "e/b"' | sort | uniq | wc -l | tr -d ' ')" 3 \
    "--dist each: once per worker"

# A worker lost for good in --dist each: its own tests are not run, and the
# run ends (it used to wait for them forever).
rm -rf state && mkdir state
suite each2 "e/a pass 0.01" "e/die diehard 0.01" "e/b pass 0.01"
FAKE_STATE=$T_TMP/state run 30 "$DM" $W -j 2 --dist each \
    --max-worker-restart 0 -v each2
is "$RC" 1 "--dist each, a worker lost for good: the run ends, exit 1"
is "$(closing "$OUT")" "distmgr: 4 passed, 1 crashed, 1 not run" \
    "--dist each: the lost worker's remaining test is not run"

# ---- what a user can get wrong ---------------------------------------------------------
run 30 "$DM" --worker /nonexistent/distworker basic
is "$RC" 3 "a missing worker exits 3"
like "$ERR$OUT" "--worker /nonexistent/distworker: No such file" \
    "a missing worker is named"
run 30 "$DM" $W /nonexistent.so
is "$RC" 3 "a suite that cannot load exits 3"
like "$ERR$OUT" "cannot load the suite: /nonexistent.so" \
    "the load error is shown"
run 30 "$DM" $W -k nothing-matches basic
is "$RC" 5 "nothing selected exits 5"
like "$ERR$OUT" "no tests collected" "nothing selected is said"
run 30 "$DM" $W -j many basic
is "$RC" 4 "a usage error exits 4"
like "$ERR" "Try 'distmgr --help'" "a usage error points to --help"
run 30 "$DM" $W -k "a and" basic
is "$RC" 4 "a bad -k expression exits 4"
run 30 "$DM" $W --shard 3/2 basic
is "$RC" 4 "a bad --shard exits 4"

# ---- --list ----------------------------------------------------------------------------------
run 30 "$DM" $W --list -k "m/t1" basic
is "$RC" 0 "--list exits 0"
is "$(printf '%s\n' "$OUT" | head -n 1)" "m/t1" "--list prints ids"
like "$OUT" "11 tests" "--list counts what it printed"
run 30 "$DM" $W --list --json - -k bad basic
like "$OUT" '"id": "m/bad"' "--list --json - holds the ids"
like "$OUT" '"count": 1' "--list --json - counts"
python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["count"]==1' \
    <<EOF && ok "--list --json - is JSON" || not_ok "--list --json - is JSON"
$OUT
EOF
run 30 "$DM" $W --list --json list.json -k bad basic
is "$RC:$OUT" "0:" "--list --json FILE prints nothing and exits 0"
python3 -c 'import json,sys; d=json.load(open("list.json"))
assert d["count"]==1 and d["tests"][0]["id"]=="m/bad"' &&
	ok "--list --json FILE writes the list to FILE" ||
	not_ok "--list --json FILE writes the list to FILE"
run 30 "$DM" $W --json out.json basic
is "$RC" 1 "--json FILE suite: a run (the file is not taken for a suite)"
like "$(cat out.json)" '"event":"run_end"' "--json FILE suite: events in FILE"
is "$(closing "$OUT")" "distmgr: 20 passed, 1 failed, 1 skipped" \
    "--json FILE suite: the terminal report stays on stdout"
run 30 "$DM" $W --list --json basic
is "$RC" 4 "--json without a file before the suite: a usage error"
like "$ERR" "no suite given: --json, --tap and --junit-xml take a file name" \
    "--json without a file: said why"
run 30 "$DM" $W --json -k bad basic
is "$RC" 4 "--json followed by an option: a usage error"
like "$ERR" "--json wants a file name or - for stdout, not '-k'" \
    "--json followed by an option: said why"

done_testing
