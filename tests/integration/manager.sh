#!/bin/sh
# manager.sh - distmgr with the real distworker: what a user sees for each
# outcome, boxed and in-process, with more workers than cores, when a
# worker is killed or stopped from outside, on Ctrl-C, with history, and
# for each exit code. Under every fault the closing counts add up to the
# selected tests and each test has exactly one result line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mgr.sh"

DM="$BIN/distmgr"
cd "$T_TMP" || exit 1

# ids SUITE FILE : the suite's test ids, as --list prints them
ids() {
	"$DM" --no-cache --list -q "$SUITES/$1.so" >"$2"
}

# ---- every outcome, boxed and in-process ------------------------------------
ids mgr_mixed mixed.ids
for mode in boxed --no-fork; do
	m=$mode
	[ "$m" = boxed ] && m=
	run 60 "$DM" --no-cache -j 2 -v $m "$SUITES/mgr_mixed.so"
	is "$RC" 1 "$mode: failures exit 1"
	is "$(closing "$OUT")" \
	    "distmgr: 10 passed, 1 failed, 2 crashed, 1 timed out, 1 skipped, 1 xfailed" \
	    "$mode: closing line counts each outcome"
	each_once "$OUT" mixed.ids "$mode: each test has one result line"
	like "$(vlines "$OUT" | grep mixed/segv)" "SIGSEGV" \
	    "$mode: a crash names its signal"
	like "$(vlines "$OUT" | grep mixed/hang)" "0.5 s" \
	    "$mode: a timeout names its limit"
	is "$(vlines "$OUT" | grep -c 'PASS mixed/pass')" 10 \
	    "$mode: every pass is shown with -v"
done
like "$(vlines "$OUT" | grep mixed/segv)" \
    "died of SIGSEGV (Segmentation fault); the worker ran it in-process" \
    "in-process, the crash says the worker died of the signal"
like "$ERR$OUT" "replacing worker" "in-process, lost workers are replaced"

# ---- in-process crashes blame exactly the crashing tests -----------------------
# A worker that dies while the manager writes to it must still have its
# last frames read: the crash goes to the test that ran, no other.
ids mgr_crashy crashy.ids
grep crash_ crashy.ids | sort >crashy.want
for i in 1 2 3 4 5 6; do
	run 60 "$DM" --no-cache -j 2 --no-fork --max-worker-restart 20 -v \
	    "$SUITES/mgr_crashy.so"
	is "$(closing "$OUT")" "distmgr: 1000 passed, 10 crashed" \
	    "in-process crashy run $i: 10 crashes, 1000 passes"
	is "$(vlines "$OUT" | awk '$2 == "CRASH" { print $3 }' | sort |
	    tr '\n' ' ')" "$(tr '\n' ' ' <crashy.want)" \
	    "in-process crashy run $i: each crash names its own test"
	each_once "$OUT" crashy.ids "in-process crashy run $i: one result each"
done

# ---- more workers than cores --------------------------------------------------------
ids many many.ids
for j in 8 16; do
	run 120 "$DM" --no-cache -j $j -v "$SUITES/many.so"
	is "$(closing "$OUT")" "distmgr: 2500 passed" "-j $j: 2500 tests pass"
	each_once "$OUT" many.ids "-j $j: each test has one result line"
	is "$(printf '%s\n' "$OUT" | grep -c ' popen -- ')" $j \
	    "-j $j: a node line per worker"
done
# -v: the header, then the workers, then the tests.
is "$(printf '%s\n' "$OUT" | head -n 1 | cut -d: -f1)" "distmgr $(
    "$DM" --version | cut -d' ' -f2)" "-v: the run's header comes first"
is "$(printf '%s\n' "$OUT" | sed -n '2,17p' | grep -c '^\[w[0-9]*\] popen -- ')" \
    16 "-v: the node lines follow the header, before any test"
like "$(printf '%s\n' "$OUT" | sed -n 2p)" " popen -- linux $(uname -m), " \
    "-v: the node line names the OS in lower case, as uname(1) -s does not"
run 120 "$DM" --no-cache -j 16 --no-fork -v "$SUITES/many.so"
each_once "$OUT" many.ids "-j 16 in-process: each test has one result line"

# ---- a worker killed or stopped from outside ------------------------------------------
ids mgr_sleepy sleepy.ids
# Workers make their TMPDIR under this one: a killed worker cannot
# remove its own, and the manager must.
mkdir -p wtmp
for mode in boxed --no-fork; do
	m=$mode
	[ "$m" = boxed ] && m=
	bg 60 env TMPDIR="$T_TMP/wtmp" "$DM" --no-cache -j 2 -v $m \
	    "$SUITES/mgr_sleepy.so"
	wait_for "$T_TMP/bg.out" "PASS sleepy/"
	kill -9 $(workers_of $BG | cut -d' ' -f1)
	bg_wait
	is "$(ls -A wtmp)" "" "$mode: the killed worker's TMPDIR is removed"
	# The kill lands while the worker runs a test, almost always; under
	# load it can land while the worker waits for its next batch, and
	# then it costs nothing. Never more than the one test.
	case "$(closing "$OUT")" in
	"distmgr: 39 passed, 1 crashed")
		is "$RC" 1 "$mode: kill -9 of a worker exits 1"
		like "$(vlines "$OUT" | grep CRASH)" "signal 9" \
		    "$mode: the lost test names signal 9" ;;
	"distmgr: 40 passed")
		is "$RC" 0 "$mode: kill -9 of an idle worker exits 0"
		ok "$mode: the idle worker's loss cost no test" ;;
	*)
		not_ok "$mode: kill -9 of a worker costs at most the test it ran"
		echo "#   $(closing "$OUT")" ;;
	esac
	each_once "$OUT" sleepy.ids "$mode: after kill -9 each test has one result"
done

bg 60 env TMPDIR="$T_TMP/wtmp" "$DM" --no-cache -j 2 --heartbeat 1 -v \
    "$SUITES/mgr_sleepy.so"
wait_for "$T_TMP/bg.out" "PASS sleepy/"
victim=$(workers_of $BG | cut -d' ' -f1)
kill -STOP $victim
bg_wait
kill -CONT $victim 2>/dev/null
is "$(ls -A wtmp)" "" "a hung worker the manager killed leaves no TMPDIR"
stopped_ok "$OUT" 40
each_once "$OUT" sleepy.ids "after SIGSTOP each test has one result line"

# ---- Ctrl-C -------------------------------------------------------------------------------
bg 60 "$DM" --no-cache -j 2 -v "$SUITES/mgr_sleepy.so"
wait_for "$T_TMP/bg.out" "PASS sleepy/"
ws=$(workers_of $BG)
kill -INT $BG
bg_wait
is "$RC" 2 "Ctrl-C exits 2"
sum_is "$OUT" 40 "Ctrl-C: the partial summary counts every test"
like "$(closing "$OUT")" "not run" "Ctrl-C: the rest is not run"
each_once "$OUT" sleepy.ids "Ctrl-C: each test has one result line"
sleep 0.3
none_alive "$ws" "Ctrl-C leaves no worker behind"

# ---- history: failures first, then the longest ----------------------------------------
run 60 "$DM" --cache-dir cache -j 1 -v "$SUITES/mgr_skew.so"
is "$(vlines "$OUT" | awk '{ print $3 }' | head -n 1)" "skew/a_short" \
    "first run: definition order"
run 60 "$DM" --cache-dir cache -j 1 -v "$SUITES/mgr_skew.so"
is "$(vlines "$OUT" | awk '{ print $3 }' | head -n 3 | tr '\n' ' ')" \
    "skew/e_fails skew/d_long skew/c_medium " \
    "second run: last failure first, then the longest"
run 60 "$DM" --cache-dir cache -j 1 --no-ff -v "$SUITES/mgr_skew.so"
is "$(vlines "$OUT" | awk '{ print $3 }' | head -n 1)" "skew/d_long" \
    "--no-ff: the longest first"
run 60 "$DM" --cache-dir cache -j 2 --lf "$SUITES/mgr_skew.so"
is "$(closing "$OUT")" "distmgr: 1 failed" "--lf runs only the last failures"
run 60 "$DM" --no-cache -j 1 -v --random-order=7 "$SUITES/mgr_skew.so"
o1=$(vlines "$OUT" | awk '{ print $3 }' | tr '\n' ' ')
like "$(printf '%s\n' "$OUT" | head -n 1)" ", --random-order=7" \
    "--random-order: the header names the seed"
is "$(printf '%s\n%s\n' "$OUT" "$ERR" | grep -c 'random-order=7')" 1 \
    "--random-order: the seed is said once"
unlike "$ERR$OUT" "warning" "--random-order: the seed is no warning"
run 60 "$DM" --no-cache -j 1 -v --random-order=7 "$SUITES/mgr_skew.so"
is "$(vlines "$OUT" | awk '{ print $3 }' | tr '\n' ' ')" "$o1" \
    "the same seed gives the same order"

# ---- reports beside the terminal ------------------------------------------------
run 60 "$DM" --no-cache -j 2 --junit-xml j.xml --tap t.tap --json e.jsonl \
    "$SUITES/mgr_skew.so"
is "$RC" 1 "with reports: the exit code is the run's"
is "$(grep -c '<testcase' j.xml)" 5 "--junit-xml: a testcase per test"
is "$(grep -c '^ok \|^not ok ' t.tap)" 5 "--tap: a line per test"
like "$(head -n 2 t.tap)" "1..5" "--tap: the plan"
like "$(cat e.jsonl)" '"event":"run_end"' "--json FILE: the events, to the end"
like "$OUT" "distmgr: 4 passed, 1 failed" "the terminal report is still there"
# --report-durations: the slowest tests with their history, in JSON.
run 60 "$DM" --cache-dir dcache -j 2 "$SUITES/mgr_skew.so"
run 60 "$DM" --cache-dir dcache -j 2 --durations 2 --report-durations \
    --json d.jsonl "$SUITES/mgr_skew.so"
like "$OUT" "slowest 2 tests" "--report-durations: --durations N still shows"
python3 - d.jsonl <<'EOF' && ok "--report-durations: the 2 slowest with their history in run_end" ||
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert ev[0]["event"] == "run_start" and ev[0]["report_durations"] == 2
d = ev[-1]["durations"]
assert d["count"] == 2 and d["timed"] == 5, d
t = d["tests"]
assert [x["id"] for x in t] == ["skew/d_long", "skew/c_medium"], t
for x in t:
	assert len(x["history"]) == 1 and x["expected"] == x["history"][0], x
	assert abs(x["duration"] - x["expected"] - x["change"]) < 1e-6, x
	assert 0.5 < x["duration"] / x["expected"] < 2, x
EOF
	not_ok "--report-durations: the 2 slowest with their history in run_end"
run 60 "$DM" --no-cache -j 2 --tap - "$SUITES/mgr_skew.so"
is "$(printf '%s\n' "$OUT" | grep -c '^ok \|^not ok ')" 5 \
    "--tap -: TAP on stdout"
is "$(printf '%s\n' "$OUT" | grep -c '^distmgr: ')" 0 \
    "--tap -: no terminal report mixed in"

# ---- exit codes ----------------------------------------------------------------------------
run 60 "$DM" --no-cache -j 2 -k "pass or skip" "$SUITES/mgr_mixed.so"
is "$RC" 0 "all passed (and skipped): exit 0"
run 60 "$DM" --no-cache -j 2 -k todo_crash "$SUITES/mgr_mixed.so"
is "$RC" 0 "an expected failure alone: exit 0"
run 60 "$DM" --no-cache "$SUITES/empty.so"
is "$RC" 5 "a suite without tests: exit 5"
like "$ERR$OUT" "no tests collected" "a suite without tests: said so"
run 60 "$DM" --no-cache /etc/hostname
is "$RC" 3 "a file that is not a suite: exit 3"
like "$ERR$OUT" "cannot load the suite" "a file that is not a suite: said so"
run 60 "$DM" --no-cache --worker /bin/false "$SUITES/mgr_skew.so"
is "$RC" 3 "a worker that exits at once: exit 3"
like "$ERR$OUT" "failed to start" "a worker that exits at once: said so"
run 60 "$DM" --no-cache --worker "$T_TMP/none" "$SUITES/mgr_skew.so"
is "$RC" 3 "a missing worker: exit 3"
run 60 "$DM" --no-cache -j 2 --tags "no-such-tag" "$SUITES/mgr_skew.so"
is "$RC" 5 "nothing selected: exit 5"
run 60 "$DM" --no-cache --bogus "$SUITES/mgr_skew.so"
is "$RC" 4 "a usage error: exit 4"
run 60 "$DM" --no-cache -j 2 -k "a and" "$SUITES/mgr_skew.so"
is "$RC" 4 "a bad -k: exit 4"
is "$OUT" "" "a bad -k: nothing on stdout (no 'no tests ran')"
is "$ERR" "distmgr: -k: column 6: expected a pattern after 'and', found the \
end of the expression
Try 'distmgr --help'." "a bad -k: only the error, as any usage error"
run 60 "$DM" --no-cache -j 2 --tags "(fast" "$SUITES/mgr_skew.so"
is "$RC:$OUT" "4:" "a bad --tags: exit 4, nothing on stdout"
like "$ERR" "distmgr: --tags: " "a bad --tags: said so"
run 10 "$DM" --help
like "$OUT" "--max-worker-restart" "--help lists the options"
run 10 "$DM" --version
like "$OUT" "distmgr 0." "--version prints the version"

done_testing
