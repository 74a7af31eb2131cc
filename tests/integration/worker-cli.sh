#!/bin/sh
# worker-cli.sh - distworker's command line as a user meets it: --help,
# --version, bad usage, --list, --run and --no-fork, with the exit
# statuses (0 passed, 1 failed, 2 interrupted, 3 not a suite, 4 usage,
# 5 no tests), the output lines, and what a run leaves behind.
. "$(dirname "$0")/lib.sh"

W="$BIN/distworker"
# Workers make their directories here, which lib.sh removes: one that a
# test crashes (--no-fork) cannot remove its own.
export TMPDIR="$T_TMP"

# ---- usage -------------------------------------------------------------

run 10 "$W" --help
is "$RC" 0 "--help exits 0"
like "$OUT" "usage: distworker --stdio" "--help shows the usage"
like "$OUT" "Exit status: 0 all passed, 1 some failed" "--help gives exit statuses"

run 10 "$W" --version
is "$RC" 0 "--version exits 0"
is "$OUT" "distworker 0.1.0 (protocol 1, suite ABI 1)" "--version names protocol and ABI"

run 10 "$W"
is "$RC" 4 "no mode is a usage error"
like "$ERR" "distworker: say --stdio, --listen, --list or --run" "no mode says what to say"
like "$ERR" "Try 'distworker --help'." "a usage error points at --help"

run 10 "$W" --bogus
is "$RC" 4 "an unknown option is a usage error"
like "$ERR" "distworker: unknown option '--bogus'" "the unknown option is named"

run 10 "$W" --run "$SUITES/outcomes.so" --timeout
is "$RC" 4 "a missing option argument is a usage error"
like "$ERR" "option '--timeout' needs an argument" "the option missing its argument is named"

run 10 "$W" --run "$SUITES/outcomes.so" --timeout soon
is "$RC" 4 "a bad timeout is a usage error"
like "$ERR" "--timeout wants seconds, not 'soon'" "the bad timeout is quoted"

run 10 "$W" --list --run "$SUITES/outcomes.so"
is "$RC" 4 "two modes are a usage error"

run 10 "$W" --stdio extra
is "$RC" 4 "--stdio takes no arguments"

run 10 "$W" --run
is "$RC" 4 "--run without a suite is a usage error"
like "$ERR" "which suite?" "--run without a suite asks which"

# ---- --list --------------------------------------------------------------

run 10 "$W" --list "$SUITES/outcomes.so"
is "$RC" 0 "--list exits 0"
is "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" 24 "--list prints one line per test"
first=$(printf '%s\n' "$OUT" | head -n 1)
is "$first" "$(printf 'outcomes/pass\ttests/suites/outcomes.c:13')" "a list line is id, tab, file:line"
sum=$(printf '%s\n' "$OUT" | sha256sum | cut -d' ' -f1)
run 10 "$W" -v --list "$SUITES/outcomes.so"
like "$ERR" "24 tests, list hash $sum" "the list hash is the sha256 of the listing"

run 10 "$W" --list "$T_TMP/nothing.so"
is "$RC" 4 "--list of a missing file exits 4"
like "$ERR" "distworker: no such file: $T_TMP/nothing.so" "a missing file is named"

run 10 "$W" --list "$SUITES/empty.so"
is "$RC" 5 "--list of a suite without tests exits 5"
like "$ERR" "no tests in $SUITES/empty.so" "a suite without tests says so"

run 10 "$W" --list "$SUITES/dup.so"
is "$RC" 3 "--list of a suite with a duplicate id exits 3"
like "$ERR" "duplicate test id d/same: tests/suites/dup/a.c:5 and tests/suites/dup/b.c:5" \
    "a duplicate id names both places"

printf 'This is a text file and not a shared object, whatever its name.\n' \
    >"$T_TMP/text.so"
run 10 "$W" --list "$T_TMP/text.so"
is "$RC" 3 "--list of a text file exits 3"
like "$ERR" "not a suite: $T_TMP/text.so: invalid ELF header" "a text file gets dlopen's reason"

# ---- --run ---------------------------------------------------------------

run 30 "$W" --run "$SUITES/outcomes.so" outcomes/pass
is "$RC" 0 "--run of a passing test exits 0"
like "$OUT" "PASS    outcomes/pass (" "a pass is reported"
like "$OUT" "distworker: 1 passed in " "the closing line counts it"

run 30 "$W" --run "$SUITES/outcomes.so" outcomes/pass outcomes/eq
is "$RC" 1 "--run with a failing test exits 1"
like "$OUT" "FAIL    outcomes/eq (" "a failure is reported"
like "$OUT" "tests/suites/outcomes.c:25: assertion failed: one + one == 3 (2 == 3)" \
    "a failure shows file, line and message"
like "$OUT" "distworker: 1 passed, 1 failed in " "the closing line counts both"

run 30 "$W" --run "$SUITES/deaths.so" deaths/segv deaths/expect_abort
is "$RC" 1 "--run with a crash exits 1"
like "$OUT" "CRASH   deaths/segv (" "a crash is reported"
like "$OUT" "died of SIGSEGV (Segmentation fault)" "a crash names its signal"
like "$OUT" "died of SIGABRT, as expected" "an expected signal is a pass that says so"

run 30 "$W" --run "$SUITES/deaths.so" deaths/print_then_crash
like "$OUT" "$(printf '      stdout:\n      | before the crash')" \
    "output printed before a crash is shown"

run 30 "$W" --run "$SUITES/deaths.so" deaths/hang --timeout 0.2
is "$RC" 1 "--run with a test over its time exits 1"
like "$OUT" "TIMEOUT deaths/hang (" "a timeout is reported"
like "$OUT" "timed out after 0.2 s; killed with its process group" "the timeout is said"

run 30 "$W" --run "$SUITES/fixtures.so" defaulted
is "$(printf '%s\n' "$OUT" | grep -c ' defaulted/')" 3 "a suite name runs all its tests"
like "$OUT" "timed out after 0.25 s" "DM_SUITE's timeout applies"

run 30 "$W" --run "$SUITES/outcomes.so" outcomes/pass nothing/here
is "$RC" 4 "--run of an unknown test exits 4"
like "$ERR" "no test 'nothing/here' in $SUITES/outcomes.so" "the unknown test is named"
unlike "$OUT" "PASS" "nothing runs when a name is unknown"

run 30 "$W" --run "$SUITES/isolation.so" isolation/flood --output-cap 1000
like "$OUT" "bytes of output cut; the last 1000 follow]" "--output-cap keeps the tail"

# A test reading stdin gets end of file, whatever the worker's stdin is.
echo "data the test must not see" | timeout -k 5 30 "$W" --run \
    "$SUITES/isolation.so" isolation/stdin >"$T_TMP/out" 2>&1
is "$?" 0 "a test reading stdin sees end of file"

mkdir "$T_TMP/tmp"
TMPDIR="$T_TMP/tmp" run 30 "$W" --run "$SUITES/isolation.so" isolation/env
like "$OUT" "DISTMGR_WORKER=w0" "--run gives tests DISTMGR_WORKER"
like "$OUT" "DISTMGR_RUN_ID=local" "--run gives tests DISTMGR_RUN_ID"
like "$OUT" "TMPDIR=$T_TMP/tmp/distworker." "tests get the worker's own TMPDIR"
is "$(ls -A "$T_TMP/tmp")" "" "the worker's TMPDIR is removed at exit"

DISTMGR_WORKER=w7 run 30 "$W" --run "$SUITES/isolation.so" isolation/env
like "$OUT" "DISTMGR_WORKER=w7" "--run passes DISTMGR_WORKER on"

run 30 "$W" --run "$SUITES/isolation.so" isolation/lingers isolation/lingers_gone
is "$RC" 0 "a lingering child is killed when its test ends"

# ---- --no-fork -----------------------------------------------------------

run 30 "$W" --no-fork --run "$SUITES/outcomes.so" outcomes/pass outcomes/eq
is "$RC" 1 "--no-fork exits 1 for a failure"
like "$OUT" "$(printf 'RUN     outcomes/pass\nPASS    outcomes/pass')" \
    "--no-fork names each test before it runs"
like "$OUT" "tests/suites/outcomes.c:25: assertion failed" "--no-fork reports the failure"

run 30 "$W" --no-fork --run "$SUITES/deaths.so" deaths/expect_exit3
is "$RC" 0 "--no-fork still forks a test that expects to exit"

run 30 "$W" --no-fork --run "$SUITES/fixtures.so" fixtures/order
like "$OUT" "$(printf 'init\ntest\nfini\nPASS    fixtures/order')" \
    "--no-fork lets tests write straight to the terminal"

run 30 "$W" --no-fork --run "$SUITES/deaths.so" deaths/fine deaths/segv
like "$OUT" "$(printf 'PASS    deaths/fine (')" "--no-fork reports what ran before a crash"
like "$OUT" "RUN     deaths/segv" "--no-fork shows which test crashed the worker"
[ "$RC" -ne 0 ] && ok "a crash in --no-fork ends the worker" ||
    not_ok "a crash in --no-fork ends the worker"

# ---- interrupted -----------------------------------------------------------

timeout -k 5 30 "$W" --run "$SUITES/deaths.so" deaths/hang >"$T_TMP/out" 2>&1 &
pid=$!
sleep 0.5
kill -INT "$pid"
wait "$pid"
is "$?" 2 "Ctrl-C during --run exits 2"
like "$(cat "$T_TMP/out")" "INTR    deaths/hang (" "the running test is reported interrupted"

done_testing
