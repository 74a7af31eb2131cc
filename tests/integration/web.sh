#!/bin/sh
# web.sh - the live dashboard over plain HTTP, with curl: the page, the
# JSON state and the server-sent event stream, while a run is paused
# halfway and after it ends.
#
# The run is tests/unit/test_reporter_web --serve, a stand-in that feeds
# the web reporter a synthetic 40-test run (3 workers; test 3 fails with
# "expected 42, got 41", test 8 crashes, 4 are skipped). It stops halfway
# until $GATE exists, so nothing here races the run.
. "$(dirname "$0")/lib.sh"

SERVE="$DM_BUILD/tests/test_reporter_web"
GATE="$T_TMP/gate"
QUIT="$T_TMP/quit"
SPID=""
CPID=""
cleanup() {
	[ -n "$CPID" ] && kill "$CPID" 2>/dev/null
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null
	rm -rf "$T_TMP"
}
trap cleanup EXIT

timeout -k 5 300 "$SERVE" --serve --tests 40 --gate "$GATE" \
    --quit "$QUIT" >"$T_TMP/serve.out" 2>"$T_TMP/serve.err" &
SPID=$!

# wait_for SECONDS CMD... : until CMD succeeds (a guard, not a timing check)
wait_for() {
	_end=$(($(date +%s) + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$_end" ] && return 1
		sleep 0.1
	done
}

wait_for 30 grep -q '^url ' "$T_TMP/serve.out" ||
	{ not_ok "the dashboard starts"; cat "$T_TMP/serve.err"; exit 1; }
URL=$(sed -n 's/^url //p' "$T_TMP/serve.out")
like "$URL" "http://127.0.0.1:" "it serves on loopback and says where"
like "$(cat "$T_TMP/serve.err")" "live dashboard at $URL" \
    "the URL is announced on stderr"

run 10 curl -s -i "$URL"
like "$OUT" "Content-Type: text/html; charset=utf-8" "GET / is HTML"
like "$OUT" "<title>distmgr</title>" "GET / is the dashboard"

state_has() { curl -s "${URL}state" | grep -qF -- "$1"; }
wait_for 60 state_has '"done": 20,' &&
	ok "the run reaches its halfway gate" ||
	not_ok "the run reaches its halfway gate"

run 10 curl -s "${URL}state"
like "$OUT" '"pass": 16,' "/state counts 16 passed halfway"
like "$OUT" '"fail": 1,' "/state counts the failure"
like "$OUT" '"crash": 1,' "/state counts the crash"
like "$OUT" '"skip": 2,' "/state counts 2 skipped"

# stream_until FILE TEXT: follows /events into FILE until it holds TEXT.
# Starts curl in the background; stream_stop ends it.
stream_start() {
	curl -s -N -i --max-time 120 "${URL}events" >"$1" 2>/dev/null &
	CPID=$!
}
stream_stop() {
	kill "$CPID" 2>/dev/null
	wait "$CPID" 2>/dev/null
	CPID=""
}

# The stream: headers, then a snapshot with what happened so far.
stream_start "$T_TMP/s1"
wait_for 30 grep -q '"done":20,' "$T_TMP/s1"
stream_stop
OUT=$(cat "$T_TMP/s1")
like "$OUT" "Content-Type: text/event-stream" "/events is an event stream"
like "$OUT" "event: snapshot" "a new browser gets a snapshot first"
like "$OUT" '"done":20,' "the snapshot has the progress so far"
like "$OUT" '"message":"expected 42, got 41"' \
    "the snapshot has the failure's message"
like "$OUT" '"stdout":"stdout of the failing test\n"' \
    "the snapshot has the failure's output"
like "$OUT" '"running":"demo/test_' "lanes show what each worker runs"

# Past the gate, an open stream gets the rest as updates.
stream_start "$T_TMP/s2"
wait_for 30 grep -q 'event: snapshot' "$T_TMP/s2"
touch "$GATE"
wait_for 60 grep -qF '"summary":{' "$T_TMP/s2"
stream_stop
OUT=$(cat "$T_TMP/s2")
like "$OUT" 'event: update' "updates follow while the run goes on"
like "$OUT" '"line":"34 passed, 1 failed, 1 crashed, 4 skipped in 0.80s"' \
    "the final summary arrives on the stream"

run 10 curl -s "${URL}state"
like "$OUT" '"done": 40,' "/state has every result at the end"
like "$OUT" '"exit_code": 1,' "/state has the exit code"

run 10 curl -s -i -H "Host: attacker.example" "${URL}state"
like "$OUT" "403 Forbidden" "a foreign Host is refused (DNS rebinding)"

touch "$QUIT"
wait "$SPID"
is "$?" 0 "the server shuts down cleanly when the run is over"
SPID=""
done_testing
