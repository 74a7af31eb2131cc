#!/bin/sh
# stdout-stalled.sh - the terminal report on a pipe nobody reads must not
# hold the run up: the run finishes, the JUnit and JSON reports are
# written meanwhile, a warning says the terminal fell behind, and when a
# reader comes at last it gets the whole report, in order.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mgr.sh"

DM="$BIN/distmgr"
cd "$T_TMP" || exit 1
READER=""
DMPID=""
cleanup() {
	[ -n "$DMPID" ] && kill -9 "$DMPID" 2>/dev/null
	[ -n "$READER" ] && kill "$READER" 2>/dev/null
	rm -rf "$T_TMP"
}
trap cleanup EXIT

# 400 tests that print 64 lines each: with -vv about 2 MB of terminal
# report, thirty times what a pipe holds.
cat >loud.c <<'EOF'
#include <stdio.h>
#include <distmgr.h>

static void
spew(void)
{
	for (int i = 0; i < 64; i++)
		printf("line %02d: chatter for a pipe that nobody reads\n", i);
}

#define T1(n)	DM_TEST(loud, t##n) { spew(); }
#define T10(n)	T1(n##0) T1(n##1) T1(n##2) T1(n##3) T1(n##4) \
		T1(n##5) T1(n##6) T1(n##7) T1(n##8) T1(n##9)
#define T100(n) T10(n##0) T10(n##1) T10(n##2) T10(n##3) T10(n##4) \
		T10(n##5) T10(n##6) T10(n##7) T10(n##8) T10(n##9)
T100(1) T100(2) T100(3) T100(4)
EOF
if ! ${CC:-cc} -std=c11 -shared -fPIC -I"$DM_TOP/include" -o loud.so \
    loud.c 2>cc.err; then
	not_ok "the test suite builds"
	sed 's/^/#   /' cc.err
	exit 1
fi

mkfifo out.fifo
# A reader that holds the pipe open and never reads.
sleep 300 <out.fifo &
READER=$!
timeout -k 5 120 "$DM" --no-cache -j 2 -vv --junit-xml stuck.xml \
    --json stuck.jsonl "$T_TMP/loud.so" >out.fifo 2>stuck.err &
DMPID=$!

wait_for stuck.jsonl '"event":"run_end"'
like "$(tail -n 1 stuck.jsonl)" '"event":"run_end"' \
    "the run ends though nobody reads the terminal report"
is "$(grep -c '"event":"test"' stuck.jsonl)" 400 \
    "the JSON report has every result meanwhile"
is "$(grep -c '<testcase' stuck.xml 2>/dev/null)" 400 \
    "the JUnit report is written meanwhile"
like "$(cat stuck.err)" \
    "terminal: stdout is not keeping up; buffering its output (the run does not wait)" \
    "a warning says the terminal report fell behind"
is "$(grep -c 'not keeping up' stuck.err)" 1 "the warning is given once"
kill -0 "$DMPID" 2>/dev/null && ok "at the end distmgr waits for the reader" ||
	not_ok "at the end distmgr waits for the reader"

# The reader comes: it gets the whole report, and distmgr exits.
timeout -k 5 60 cat out.fifo >got.txt
wait "$DMPID"
is "$?" 0 "distmgr exits 0 once the report is read"
DMPID=""
is "$(grep -c '^\[w[0-9]\] PASS loud/t' got.txt)" 400 \
    "the reader gets every result line"
is "$(grep -c 'chatter for a pipe' got.txt)" 25600 \
    "the reader gets every line of output"
is "$(tail -n 1 got.txt | sed 's/ in [0-9.]*s$//')" "distmgr: 400 passed" \
    "the reader gets the closing line last"
done_testing
