#!/bin/sh
# web-browser.sh - the live dashboard in a real browser: headless
# Chromium, driven over its DevTools protocol (tests/web/cdp.py), opens
# the page while a run is paused halfway, checks what a person would see
# (progress, counts, a failure with its message and output, one lane per
# worker), lets the run finish, checks the summary, and checks it is
# still shown after the server has gone. Screenshots are kept in
# $DM_BUILD/test-artifacts/.
#
# The run is tests/unit/test_reporter_web --serve (see web.sh): 40 tests
# on 3 workers, test 3 fails with "expected 42, got 41", test 8 crashes.
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

timeout -k 5 300 "$SERVE" --serve --tests 40 --gate "$GATE" \
    --quit "$QUIT" >"$T_TMP/serve.out" 2>"$T_TMP/serve.err" &
SPID=$!
wait_for 30 grep -q '^url ' "$T_TMP/serve.out" ||
	{ not_ok "the dashboard starts"; cat "$T_TMP/serve.err"; exit 1; }
URL=$(sed -n 's/^url //p' "$T_TMP/serve.out")

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
FAIL_EL="document.querySelector('.failure[data-id=\"demo/test_003\"]')"

cdp open "$URL"
js "the page loads and follows the run" "$(text status) === 'running'"
js "mid-run: progress reads 20 / 40" "$(text progress-text) === '20 / 40'"
js "mid-run: 16 passed" "$(count pass) === '16'"
js "mid-run: 1 failed" "$(count fail) === '1'"
js "mid-run: 1 crashed" "$(count crash) === '1'"
js "mid-run: the failure is listed" "$FAIL_EL !== null"
js "mid-run: with its message" \
    "$FAIL_EL.querySelector('.msg').textContent === 'expected 42, got 41'"
js "mid-run: with its output" "$FAIL_EL.querySelector('pre.out')\
.textContent === 'stdout of the failing test\\n'"
js "mid-run: with where it failed" \
    "$FAIL_EL.querySelector('.where').textContent.startsWith('demo.c:33')"
js "mid-run: one lane per worker" \
    "document.querySelectorAll('#lanes .lane').length === 3"
js "mid-run: a lane shows the test it runs" "document.querySelector(\
'.lane[data-worker=\"w0\"] .lane-running').textContent.startsWith('demo/test_')"
js "mid-run: the slowest tests are listed" \
    "document.querySelectorAll('#slowest tr').length >= 10"
cdp shot "$ART/web-midrun.png" && ok "screenshot mid-run: $ART/web-midrun.png" ||
	not_ok "screenshot mid-run"

touch "$GATE"
js "after the run: progress reads 40 / 40" \
    "$(text progress-text) === '40 / 40'"
js "after the run: the summary line" "$(text summary) === \
'distmgr: 34 passed, 1 failed, 1 crashed, 4 skipped in 0.80s'"
js "after the run: the status says failed" "$(text status) === 'failed'"
js "after the run: 4 skipped" "$(count skip) === '4'"
js "after the run: the crash is listed with its signal" "document.querySelector(\
'.failure[data-id=\"demo/test_008\"] .where').textContent.includes('SIGSEGV')"
js "after the run: no lane still runs a test" "Array.from(document.\
querySelectorAll('.lane-running')).every(e => e.textContent === 'idle')"

# distmgr exits after the run: the page keeps the summary.
touch "$QUIT"
wait "$SPID"
is "$?" 0 "the run's server exits cleanly"
SPID=""
js "after distmgr exits: the summary stays" "$(text status) === 'failed' && \
$(text summary).includes('34 passed')"
cdp shot "$ART/web-final.png" && ok "screenshot at the end: $ART/web-final.png" ||
	not_ok "screenshot at the end"
done_testing
