#!/bin/sh
# web-browser.sh - the live dashboard in a real browser: headless
# Chromium, driven over its DevTools protocol (tests/web/cdp.py), opens
# the page while a run is paused near its end, checks what a person would
# see (progress, counts, a failure with its message and output, one lane
# per worker and what it runs), lets the run finish, checks the summary,
# and checks it is still shown after the server has gone. Screenshots
# are kept in $DM_BUILD/test-artifacts/.
#
# The run is a real `distmgr -j 3 --web 127.0.0.1:0` of the webgate
# suite (tests/suites/webgate.c) once distmgr has --web; until then it is
# tests/unit/test_reporter_web --serve, a stand-in that feeds the same
# reporter a synthetic run (see web.sh). Either run waits at a gate file
# so that nothing here races it.
. "$(dirname "$0")/lib.sh"

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
	echo "ok 1 # SKIP chromium is not installed" \
	    "(scripts/ensure-deps.sh installs it)"
	exit 0
fi

SERVE="$DM_BUILD/tests/test_reporter_web"
ART="$DM_BUILD/test-artifacts"
CDP="$DM_TOP/tests/web/cdp.py"
GATE="$T_TMP/gate"
QUIT="$T_TMP/quit"
PROFILE="$T_TMP/chromium"
SPID=""
BPID=""
mkdir -p "$ART" "$PROFILE"
cleanup() {
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null
	# Chromium runs in its own process group (setsid): end all of it.
	[ -n "$BPID" ] && kill -- "-$BPID" 2>/dev/null
	[ -n "$BPID" ] && wait "$BPID" 2>/dev/null
	rm -rf "$T_TMP"
}
trap cleanup EXIT

wait_for() {
	_end=$(($(date +%s) + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$_end" ] && return 1
		sleep 0.2
	done
}

if [ -x "$BIN/distmgr" ] && "$BIN/distmgr" --help 2>&1 | grep -q -- '--web'
then
	# 40 tests; webgate/gate holds its worker until $GATE exists, by
	# when every other test has finished.
	MODE="a real distmgr run"
	# A first run fills the cache, so that the watched run's
	# --report-durations has a history to show. Its gate opens after
	# 0.3 s: the gate test, the longest, then comes first again (--no-ff
	# keeps the failures from going before it), as in definition order.
	(sleep 0.3; touch "$T_TMP/open-gate") &
	(cd "$T_TMP" && DM_WEB_GATE="$T_TMP/open-gate" timeout -k 5 120 \
	    "$BIN/distmgr" -j 3 --cache-dir "$T_TMP/cache" \
	    "$SUITES/webgate.so" >/dev/null 2>&1)
	(cd "$T_TMP" && DM_WEB_GATE="$GATE" exec timeout -k 5 300 \
	    "$BIN/distmgr" -j 3 --cache-dir "$T_TMP/cache" --no-ff \
	    --report-durations --web 127.0.0.1:0 \
	    "$SUITES/webgate.so" >"$T_TMP/serve.out" 2>"$T_TMP/serve.err") &
	SPID=$!
	wait_for 30 grep -q 'live dashboard at ' "$T_TMP/serve.err" ||
		{ not_ok "distmgr --web starts"; cat "$T_TMP/serve.err"; exit 1; }
	URL=$(sed -n 's/.*live dashboard at //p' "$T_TMP/serve.err")
	MID_DONE="39 / 40"; MID_PASS=35; FINAL_PASS=36; FINAL_SKIP=2
	FAIL_ID=webgate/fails; CRASH_ID=webgate/crashes
	WHERE="tests/suites/webgate.c:"; RUNNING=webgate/gate
	LINE="distmgr: 36 passed, 1 failed, 1 crashed, 2 skipped in "
	WANT_RC=1
else
	# 40 tests on 3 workers, paused after 20.
	MODE="the stand-in run (distmgr has no --web yet)"
	timeout -k 5 300 "$SERVE" --serve --tests 40 --gate "$GATE" \
	    --quit "$QUIT" >"$T_TMP/serve.out" 2>"$T_TMP/serve.err" &
	SPID=$!
	wait_for 30 grep -q '^url ' "$T_TMP/serve.out" ||
		{ not_ok "the dashboard starts"; cat "$T_TMP/serve.err"; exit 1; }
	URL=$(sed -n 's/^url //p' "$T_TMP/serve.out")
	MID_DONE="20 / 40"; MID_PASS=16; FINAL_PASS=34; FINAL_SKIP=4
	FAIL_ID=demo/test_003; CRASH_ID=demo/test_008
	WHERE="demo.c:33"; RUNNING=demo/test_
	LINE="distmgr: 34 passed, 1 failed, 1 crashed, 4 skipped in 0.80s"
	WANT_RC=0
fi
echo "# watching $MODE at $URL"

setsid "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --disable-extensions \
    --user-data-dir="$PROFILE" --remote-debugging-port=0 \
    --window-size=1280,900 about:blank >"$T_TMP/chromium.log" 2>&1 &
BPID=$!
if ! wait_for 60 test -s "$PROFILE/DevToolsActivePort"; then
	not_ok "chromium starts with its DevTools port"
	tail -n 20 "$T_TMP/chromium.log" | sed 's/^/#   /'
	exit 1
fi
PORT=$(head -n 1 "$PROFILE/DevToolsActivePort")
wait_for 30 python3 "$CDP" "$PORT" eval 1 ||
	{ not_ok "DevTools answers"; exit 1; }
ok "headless chromium is up (DevTools on port $PORT)"

cdp() { python3 "$CDP" "$PORT" "$@"; }
# js WHAT EXPR: the page makes EXPR true within 60 s
js() {
	_what=$1
	shift
	if _o=$(cdp wait "$1" 60); then
		ok "$_what"
	else
		not_ok "$_what"
		printf '%s\n' "$_o" | sed 's/^/#   /'
	fi
}
text() { echo "document.getElementById('$1').textContent"; }
count() { echo "document.getElementById('count-$1').dataset.n"; }
FAIL_EL="document.querySelector('.failure[data-id=\"$FAIL_ID\"]')"

cdp open "$URL"
js "the page loads and follows the run" "$(text status) === 'running'"
js "mid-run: progress reads $MID_DONE" "$(text progress-text) === '$MID_DONE'"
js "mid-run: $MID_PASS passed" "$(count pass) === '$MID_PASS'"
js "mid-run: 1 failed" "$(count fail) === '1'"
js "mid-run: 1 crashed" "$(count crash) === '1'"
js "mid-run: the failure is listed" "$FAIL_EL !== null"
js "mid-run: with its message" \
    "$FAIL_EL.querySelector('.msg').textContent === 'expected 42, got 41'"
js "mid-run: with its output" "$FAIL_EL.querySelector('pre.out')\
.textContent === 'stdout of the failing test\\n'"
js "mid-run: with where it failed" \
    "$FAIL_EL.querySelector('.where').textContent.startsWith('$WHERE')"
js "mid-run: one lane per worker" \
    "document.querySelectorAll('#lanes .lane').length === 3"
js "mid-run: a lane shows the test it runs" "Array.from(document.\
querySelectorAll('.lane-running')).some(e => e.textContent.startsWith('$RUNNING'))"
js "mid-run: the slowest tests are listed" \
    "document.querySelectorAll('#slowest tr').length >= 10"
if [ "$MODE" = "a real distmgr run" ]; then
	js "--report-durations: the listing says it compares with history" \
	    "$(text slow-title) === 'Slowest 10 tests, against their history'"
	js "--report-durations: a test's usual time from the cache" "Array.from(\
document.querySelectorAll('#slowest td.usual')).some(e => /[0-9] ms\$/.test(e.textContent))"
	js "--report-durations: how this run compares, in percent" "Array.from(\
document.querySelectorAll('#slowest td.change')).some(e => /^.[0-9]+%\$/.test(e.textContent))"
fi
cdp shot "$ART/web-midrun.png" && ok "screenshot mid-run: $ART/web-midrun.png" ||
	not_ok "screenshot mid-run"

touch "$GATE"
js "after the run: progress reads 40 / 40" \
    "$(text progress-text) === '40 / 40'"
js "after the run: the summary line" "$(text summary).startsWith('$LINE')"
js "after the run: the status says failed" "$(text status) === 'failed'"
js "after the run: $FINAL_PASS passed, $FINAL_SKIP skipped" \
    "$(count pass) === '$FINAL_PASS' && $(count skip) === '$FINAL_SKIP'"
js "after the run: the crash is listed with its signal" "document.querySelector(\
'.failure[data-id=\"$CRASH_ID\"] .where').textContent.includes('SIGSEGV')"
js "after the run: no lane still runs a test" "Array.from(document.\
querySelectorAll('.lane-running')).every(e => e.classList.contains('idle'))"

# distmgr exits after the run: the page keeps the summary.
touch "$QUIT"
wait "$SPID"
is "$?" "$WANT_RC" "the run's server exits as it should"
SPID=""
js "after distmgr exits: the summary stays" "$(text status) === 'failed' && \
$(text summary).includes('$FINAL_PASS passed')"
cdp shot "$ART/web-final.png" && ok "screenshot at the end: $ART/web-final.png" ||
	not_ok "screenshot at the end"
done_testing
