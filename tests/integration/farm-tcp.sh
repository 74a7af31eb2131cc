#!/bin/sh
# farm-tcp.sh - --tx tcp= against a stand-in daemon (mgr-fake-daemon.py,
# scripted workers behind a real listening socket): plain TCP on
# loopback, TLS with both sides' certificates from contrib/make-certs.sh,
# a daemon whose certificate the manager's CA did not sign, a daemon with
# no free slot whose worker joins when one frees up, a daemon killed
# mid-run, one that starts after the run did (tried again while tests
# remain), and a link that goes silent (bench_delay holding every byte).
# Under every fault: every test exactly one result, no hang.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mgr.sh"

if ! command -v python3 >/dev/null 2>&1; then
	echo "ok 1 - # SKIP no python3 for the stand-in daemon"
	exit 0
fi
DM="$BIN/distmgr"
DAEMON="$DM_TOP/tests/integration/mgr-fake-daemon.py"
RELAY="$DM_BUILD/bench/bench_delay"
# Local workers are scripted too: the suites are the fake worker's.
W="--no-cache --no-config --worker $FAKE"
cd "$T_TMP" || exit 1
PIDS=""
cleanup() {
	for p in $PIDS; do
		kill -9 "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null
	done
	rm -rf "$T_TMP"
}
trap cleanup EXIT
trap 'cleanup; exit 2' INT TERM HUP PIPE

many() {	# many PREFIX N OUTCOME SECONDS
	_i=1
	while [ "$_i" -le "$2" ]; do
		echo "$1$_i $3 $4"
		_i=$((_i + 1))
	done
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# daemon PORT ARGS... : a stand-in daemon in its own process group;
# DPID is its pid
daemon() {
	_p=$1
	shift
	rm -f "ready.$_p"
	setsid python3 "$DAEMON" --listen "127.0.0.1:$_p" --ready "ready.$_p" \
	    "$@" 2>>daemon.log &
	DPID=$!
	PIDS="$PIDS $DPID"
	_i=0
	while [ ! -f "ready.$_p" ] && [ $_i -lt 100 ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
}

{ many t/p 20 pass 0.01; echo "t/bad fail 0.01 oops"; } >basic
cut -d' ' -f1 basic >basic.ids
{ many s/t 40 pass 0.1; } >slow
cut -d' ' -f1 slow >slow.ids

# ---- plain TCP on loopback ---------------------------------------------------
P1=$(free_port)
daemon "$P1"
run 30 "$DM" $W -v --tx "2*tcp=127.0.0.1:$P1" basic
is "$(closing "$OUT")" "distmgr: 20 passed, 1 failed" \
    "tcp= on loopback: every test has its result"
each_once "$OUT" basic.ids "tcp= on loopback: one result each"
is "$(printf '%s\n' "$OUT" | grep -c "^\[w[01]\] tcp=127.0.0.1:$P1 -- ")" 2 \
    "tcp=: the node lines show the spec"
run 30 "$DM" $W -v --tx "tcp=localhost:$P1" basic
is "$(closing "$OUT")" "distmgr: 20 passed, 1 failed" \
    "tcp= by name: localhost resolves to loopback"

# ---- TLS ---------------------------------------------------------------------
C=$T_TMP/certs
sh "$DM_TOP/contrib/make-certs.sh" "$C" ca
sh "$DM_TOP/contrib/make-certs.sh" "$C" server farm
sh "$DM_TOP/contrib/make-certs.sh" "$C" client mgr
sh "$DM_TOP/contrib/make-certs.sh" "$C/other" ca
sh "$DM_TOP/contrib/make-certs.sh" "$C/other" client mgr
TLS="--tls-cert $C/mgr.pem --tls-key $C/mgr.key --tls-ca $C/ca.pem"
P2=$(free_port)
daemon "$P2" --cert "$C/farm.pem" --key "$C/farm.key" --ca "$C/ca.pem"
# shellcheck disable=SC2086
run 30 "$DM" $W -v --tx "2*tcp=127.0.0.1:$P2" $TLS basic
is "$(closing "$OUT")" "distmgr: 20 passed, 1 failed" \
    "tcp= over TLS: every test has its result"
each_once "$OUT" basic.ids "tcp= over TLS: one result each"
# shellcheck disable=SC2086
run 30 "$DM" $W -v --tx "tcp=localhost:$P2" $TLS basic
is "$(closing "$OUT")" "distmgr: 20 passed, 1 failed" \
    "tcp= over TLS: the certificate names localhost"
# The daemon's certificate is signed by a CA this manager does not trust.
run 30 "$DM" $W -v -j 1 --tx "tcp=127.0.0.1:$P2" \
    --tls-cert "$C/other/mgr.pem" --tls-key "$C/other/mgr.key" \
    --tls-ca "$C/other/ca.pem" basic
like "$OUT$ERR" "w1 (tcp=127.0.0.1:$P2) did not come up: TLS handshake with 127.0.0.1:$P2: certificate verification failed" \
    "a daemon from another farm is refused, and reported"
each_once "$OUT" basic.ids "a refused daemon: the local worker runs every test"
# A daemon that speaks no TLS where TLS is expected (it takes the
# handshake for a broken frame and hangs up).
# shellcheck disable=SC2086
run 30 "$DM" $W -v -j 1 --tx "tcp=127.0.0.1:$P1" $TLS slow
like "$OUT$ERR" "w1 (tcp=127.0.0.1:$P1) did not come up: TLS handshake with 127.0.0.1:$P1: " \
    "a daemon without TLS where TLS is wanted is reported"
each_once "$OUT" slow.ids "a daemon without TLS: one result each"
run 30 "$DM" $W -v --tx "tcp=127.0.0.1:$P2" \
    --tls-cert "$C/mgr.pem" --tls-key "$C/farm.key" --tls-ca "$C/ca.pem" basic
is "$RC" 3 "a key that does not fit the certificate: exit 3"
like "$OUT$ERR" "cannot load private key $C/farm.key" "and it says so"

# ---- no free slot: the worker joins when one frees up --------------------------
P3=$(free_port)
daemon "$P3" --jobs 1
many a/t 20 pass 0.1 >first
bg 60 "$DM" $W -v --tx "tcp=127.0.0.1:$P3" first
wait_for "$T_TMP/bg.out" "PASS a/t2"
run 60 "$DM" $W -v -j 1 --tx "tcp=127.0.0.1:$P3" slow
SECOND_OUT=$OUT
SECOND_ERR=$ERR
bg_wait
FIRST_OUT=$OUT
OUT=$SECOND_OUT
ERR=$SECOND_ERR
is "$(closing "$OUT")" "distmgr: 40 passed" \
    "a daemon with no free slot: every test passes"
each_once "$OUT" slow.ids "a daemon with no free slot: one result each"
like "$(vlines "$OUT")" "[w1] PASS" \
    "the daemon's worker joins once the other run frees its slot"
unlike "$OUT$ERR" "did not come up" "waiting for a slot is not failing to come up"
like "$FIRST_OUT" "distmgr: 20 passed" "the other run was not disturbed"

# ---- a daemon killed mid-run ----------------------------------------------------
P4=$(free_port)
daemon "$P4"
bg 60 "$DM" $W -v -j 1 --tx "2*tcp=127.0.0.1:$P4" slow
wait_for "$T_TMP/bg.out" "[w2] PASS"
kill -9 "-$DPID"
bg_wait
sum_is "$OUT" 40 "a daemon killed: the counts add up"
each_once "$OUT" slow.ids "a daemon killed: every test exactly one result"
like "$OUT" "down: host lost (tcp=127.0.0.1:$P4: " \
    "a daemon killed: its workers are reported lost"
# Its workers may have been between two tests (a slow manager, as under
# AddressSanitizer, leaves them waiting for their next batch): then the
# kill costs no test at all, and the run passes.
n=$(vlines "$OUT" | grep -c CRASH)
[ "$n" -le 2 ] && ok "a daemon killed costs only its running tests ($n)" ||
    not_ok "a daemon killed costs only its running tests ($n)"
if [ "$n" -gt 0 ]; then
	is "$RC" 1 "a daemon killed mid-run: the run fails (its running tests crashed)"
	like "$(vlines "$OUT" | grep CRASH)" \
	    "host lost (tcp=127.0.0.1:$P4: connection closed by peer)" \
	    "a daemon killed: its running tests say host lost"
else
	is "$RC" 0 "a daemon killed between tests: the run passes"
	ok "a daemon killed between tests: no test to say host lost"
fi
# Refused, or accepted by a listening socket not yet closed and then
# reset: either way reported.
like "$OUT$ERR" "(tcp=127.0.0.1:$P4) did not come up: " \
    "a daemon killed: the reconnect fails and is reported"

# Over TLS the peer goes without close_notify: that is the peer closing
# too, not a "read error".
P4=$(free_port)
daemon "$P4" --cert "$C/farm.pem" --key "$C/farm.key" --ca "$C/ca.pem"
# shellcheck disable=SC2086
bg 60 "$DM" $W -v -j 1 --tx "2*tcp=127.0.0.1:$P4" $TLS slow
wait_for "$T_TMP/bg.out" "[w2] PASS"
kill -9 "-$DPID"
bg_wait
each_once "$OUT" slow.ids "a TLS daemon killed: every test exactly one result"
like "$(vlines "$OUT" | grep CRASH)" "host lost (tcp=127.0.0.1:$P4: connection closed by peer)" \
    "a TLS daemon killed: its running tests say host lost, the peer closed"

P4=$(free_port)
daemon "$P4"
bg 60 "$DM" $W -v -j 1 --reruns 1 \
    --tx "2*tcp=127.0.0.1:$P4" slow
wait_for "$T_TMP/bg.out" "[w2] PASS"
kill -9 "-$DPID"
bg_wait
is "$RC" 0 "a daemon killed, --reruns 1: its tests are run again elsewhere"
is "$(closing "$OUT" | sed 's/, [0-9]* flaky//')" "distmgr: $(vlines "$OUT" | grep -c PASS) passed" \
    "a daemon killed, --reruns 1: nothing crashed"
each_once "$OUT" slow.ids "a daemon killed, --reruns 1: one result each"

# ---- a daemon that starts after the run did ------------------------------------
# Nobody listens at first: reported, tried again while tests remain,
# and its workers join once it is up.
# Six seconds for the local worker alone: time enough, even on a busy
# machine, for the daemon to start and be found.
many lt/t 60 pass 0.1 >late
cut -d' ' -f1 late >late.ids
P6=$(free_port)
bg 90 "$DM" $W -v -j 1 --tx "2*tcp=127.0.0.1:$P6" late
wait_for "$T_TMP/bg.out" "[w0] PASS"
daemon "$P6"
bg_wait
is "$(closing "$OUT")" "distmgr: 60 passed" "a late daemon: every test passes"
each_once "$OUT" late.ids "a late daemon: one result each"
like "$OUT$ERR" "did not come up: cannot connect to 127.0.0.1:$P6" \
    "a late daemon: not there at the start, and reported"
like "$OUT$ERR" "; trying again while tests remain" \
    "a late daemon: the manager says it will try again"
like "$(vlines "$OUT" | grep -E '^\[w[12]\]')" "PASS" \
    "a late daemon: its workers join and run tests"

# ---- a link that goes silent -------------------------------------------------------
P5=$(free_port)
daemon "$P5"
R=$(free_port)
setsid "$RELAY" "$R" 127.0.0.1 "$P5" 1 "$T_TMP/hold" >relay.out 2>&1 &
PIDS="$PIDS $!"
wait_for relay.out ready
bg 60 "$DM" $W -v -j 1 --heartbeat 1 \
    --tx "2*tcp=127.0.0.1:$R" slow
wait_for "$T_TMP/bg.out" "[w2] PASS"
touch "$T_TMP/hold"
bg_wait
rm -f "$T_TMP/hold"
sum_is "$OUT" 40 "a silent link: the counts add up, no hang"
each_once "$OUT" slow.ids "a silent link: every test exactly one result"
# Its workers' lines say why (the tests they ran, if any were running,
# and their "down" lines either way).
like "$OUT" "host lost (tcp=127.0.0.1:$R: the worker's host stopped answering (no heartbeat for" \
    "a silent link: the workers are lost by the heartbeat, and say so"

done_testing
