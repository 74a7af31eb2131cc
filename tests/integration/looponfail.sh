#!/bin/sh
# looponfail.sh - distmgr -f: a suite with a failing test, rebuilt while
# distmgr waits, so that the test passes; only the failed test runs
# again, then the whole suite; Ctrl-C while waiting and while running
# leaves with exit 2 and no process behind; --watch DIR; and distmgr's
# own reports in a watched directory start no run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mgr.sh"

DM="$BIN/distmgr"
cd "$T_TMP" || exit 1
cleanup() {
	[ -n "${BG:-}" ] && kill -9 "$BG" 2>/dev/null
	rm -rf "$T_TMP"
}
trap cleanup EXIT

cat >lf.c <<'EOF'
#include <stdio.h>
#include <distmgr.h>

DM_TEST(lf, one) { DM_ASSERT(1); }
DM_TEST(lf, two) { DM_ASSERT(FIXED == 1, "not fixed yet"); }
DM_TEST(lf, three) { DM_ASSERT(1); }
DM_TEST(lf, data)
{
	FILE *fp = fopen("data/value", "r");
	int v = 0;

	if (fp != NULL) {
		if (fscanf(fp, "%d", &v) != 1)
			v = 0;
		fclose(fp);
	}
	DM_ASSERT(v == 1, "data/value holds %d", v);
}
EOF
# build FIXED [OUT]: the suite, as a build would make it.
build() {
	${CC:-cc} -std=c11 -shared -fPIC -DFIXED="$1" -I"$DM_TOP/include" \
	    -o "${2:-lf.so}" lf.c 2>cc.err || {
		not_ok "the suite builds"
		sed 's/^/#   /' cc.err
		exit 1
	}
}
mkdir data
echo 1 >data/value
build 0

# between FILE FROM TO : the lines of FILE after the first line holding
# FROM, up to the first line after it holding TO (both left out).
between() {
	awk -v a="$2" -v b="$3" '
	    on && index($0, b) { exit }
	    on { print }
	    !on && index($0, a) { on = 1 }' "$1"
}

# ---- a failure, fixed by a rebuild ------------------------------------------
bg 60 "$DM" -f -j 2 -v "$T_TMP/lf.so"
wait_for "$T_TMP/bg.out" "looponfail: 1 test failed; waiting for a change to"
OUT=$(cat "$T_TMP/bg.out")
is "$(closing "$OUT")" "distmgr: 3 passed, 1 failed" "the first run runs all"
like "$OUT" "looponfail: 1 test failed; waiting for a change to $T_TMP/lf.so (Ctrl-C to quit)" \
    "then it says what failed and what it waits for"
is "$(workers_of "$BG")" "" "no worker is kept while it waits"
ws=$(pids "$OUT")

build 1				# in place, as cc -o does
wait_for "$T_TMP/bg.out" "looponfail: all passed; waiting"
OUT=$(cat "$T_TMP/bg.out")
like "$OUT" "looponfail: $T_TMP/lf.so changed; running the 1 test that failed" \
    "a rebuild is seen, and says which file changed"
second=$(between "$T_TMP/bg.out" "running the 1 test that failed" \
    "looponfail:")
like "$second" "distmgr $("$DM" --version | cut -d' ' -f2): 1 test from lf.so" \
    "the second run has the one test"
is "$(vlines "$second" | awk '{ print $2, $3 }')" "PASS lf/two" \
    "only the failed test runs, and passes"
is "$(closing "$second")" "distmgr: 1 passed" "the second run's closing line"
like "$OUT" "looponfail: the test that failed passes now; running all tests" \
    "once it passes, it says the whole suite runs"
third=$(between "$T_TMP/bg.out" "passes now; running all tests" \
    "looponfail:")
is "$(vlines "$third" | awk '{ print $3 }' | sort | tr '\n' ' ')" \
    "lf/data lf/one lf/three lf/two " "then the whole suite runs at once"
is "$(closing "$third")" "distmgr: 4 passed" "and passes"
is "$(count "$OUT" "looponfail: ")" 4 "nothing else starts a run"
is "$(workers_of "$BG")" "" "no worker is kept while it waits, again"
ws="$ws $(pids "$OUT")"

kill -INT "$BG"
bg_wait
is "$RC" 2 "Ctrl-C while waiting: exit 2"
like "$OUT" "looponfail: interrupted" "Ctrl-C while waiting: said so"
none_alive "$ws" "Ctrl-C while waiting: no worker of any run is left"

# ---- Ctrl-C while a run goes on ---------------------------------------------
bg 60 "$DM" -f -j 2 -v "$SUITES/mgr_sleepy.so"
wait_for "$T_TMP/bg.out" "PASS sleepy/"
ws=$(workers_of "$BG")
kill -INT "$BG"
bg_wait
is "$RC" 2 "Ctrl-C while running: exit 2"
like "$(closing "$OUT")" "not run" "Ctrl-C while running: the partial summary"
sum_is "$OUT" 40 "Ctrl-C while running: every test is counted"
unlike "$OUT" "waiting for a change" "Ctrl-C while running: no more waiting"
sleep 0.3
none_alive "$ws" "Ctrl-C while running: no worker is left"

# ---- --watch DIR, and our own writes -----------------------------------------
echo 0 >data/value
build 1
mkdir -p reports
bg 60 "$DM" -f -j 2 --watch "$T_TMP" --junit-xml "$T_TMP/reports/j.xml" \
    --json "$T_TMP/j.jsonl" --tap "$T_TMP/t.tap" "$T_TMP/lf.so"
wait_for "$T_TMP/bg.out" "looponfail: 1 test failed; waiting"
like "$(cat "$T_TMP/bg.out")" "waiting for a change to $T_TMP/lf.so or under $T_TMP (Ctrl-C" \
    "--watch: the waiting line names the directory"
sleep 1.5
is "$(count "$(cat "$T_TMP/bg.out")" "changed")" 0 \
    "--watch: the reports, the cache and the tests' own files start no run"
echo 1 >data/value
wait_for "$T_TMP/bg.out" "looponfail: all passed; waiting"
OUT=$(cat "$T_TMP/bg.out")
like "$OUT" "looponfail: $T_TMP/data/value changed; running the 1 test that failed" \
    "--watch: a change under the directory is seen, by name"
is "$(grep -c '<testcase' reports/j.xml)" 4 \
    "--junit-xml holds the last run, the whole suite"
is "$(grep -c '"event":"run_start"' j.jsonl)" 3 "--json: every run, one after the other"
is "$(head -n 2 t.tap | tail -n 1)" "1..4" "--tap: the file holds the last run"
build 1 lf.so.new
mv lf.so.new lf.so		# as a build that renames into place
wait_for "$T_TMP/bg.out" "lf.so changed; running all tests"
# Everything under --watch counts: the build's files too.
like "$(cat "$T_TMP/bg.out")" ", $T_TMP/lf.so changed; running all tests" \
    "a suite renamed into place is seen; after a pass, all tests run"
kill -INT "$BG"
bg_wait
is "$RC" 2 "--watch: Ctrl-C: exit 2"

# ---- what it cannot wait out -------------------------------------------------
run 30 "$DM" -f --watch "$T_TMP/none" "$T_TMP/lf.so"
is "$RC" 4 "--watch of a missing directory: a usage error"
like "$OUT$ERR" "--watch $T_TMP/none: No such file or directory" \
    "--watch of a missing directory: said so"
run 30 "$DM" -f --worker "$T_TMP/none" "$T_TMP/lf.so"
is "$RC" 3 "no worker program: exit 3 at once, no waiting"
done_testing
