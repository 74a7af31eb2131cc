#!/bin/sh
# farm-netns.sh - a build farm made of network namespaces: each host is
# an `ip netns` joined to this one by a veth pair, with the real
# distworker --listen on its own address (beyond loopback, so TLS with
# both sides' certificates from contrib/make-certs.sh). The manager runs
# here with --tx tcp=... and the real suites travel by content. Then the
# faults a farm has: a link cut mid-run (set down, or its veth deleted),
# a host whose distworker processes are killed mid-run, a host that joins
# after the run started. Under every fault: every test exactly one
# result, the lost ones "host lost", no hang.
#
# Needs root and ip netns; skips otherwise.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mgr.sh"

skip() {
	echo "ok 1 - # SKIP $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "not root: ip netns needs it"
command -v ip >/dev/null 2>&1 || skip "no ip (iproute2)"
command -v openssl >/dev/null 2>&1 || skip "no openssl for the certificates"
id nobody >/dev/null 2>&1 || skip "no user nobody for the daemons"

DM="$BIN/distmgr"
DW="$BIN/distworker"
# Unique to this run: interface names (15 bytes at most), namespaces,
# and a /16 of private addresses that other runs do not use at once.
TAG="dm$$"
NET="10.$((100 + $$ % 150))"
PORT=7700
NS_LIST=""
cleanup() {
	for ns in $NS_LIST; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null
		done
		ip link del "$TAG${ns##*-}" 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$T_TMP"
}
trap cleanup EXIT
trap 'cleanup; exit 2' INT TERM HUP PIPE

ip netns add "$TAG-probe" 2>/dev/null || skip "ip netns add failed here"
ip netns del "$TAG-probe"

# The daemons run as nobody: they must reach their directories.
chmod 755 "$T_TMP"
cd "$T_TMP" || exit 1
C=$T_TMP/certs
sh "$DM_TOP/contrib/make-certs.sh" "$C" ca
sh "$DM_TOP/contrib/make-certs.sh" "$C" client mgr
TLS="--tls-cert $C/mgr.pem --tls-key $C/mgr.key --tls-ca $C/ca.pem"

# addr N : the far address of host N
addr() {
	echo "$NET.$1.2"
}

# host N : namespace $TAG-N, the veth pair $TAGN (here, $NET.N.1) and
# eth0 (there, $NET.N.2), and a certificate naming that address.
host() {
	_ns=$TAG-$1
	ip netns add "$_ns" || return 1
	NS_LIST="$NS_LIST $_ns"
	ip link add "$TAG$1" type veth peer name eth0 netns "$_ns" || return 1
	ip addr add "$NET.$1.1/24" dev "$TAG$1"
	ip link set "$TAG$1" up
	ip -n "$_ns" addr add "$(addr "$1")/24" dev eth0
	ip -n "$_ns" link set eth0 up
	ip -n "$_ns" link set lo up
	sh "$DM_TOP/contrib/make-certs.sh" "$C" server "h$1" "IP:$(addr "$1")"
	mkdir -p "h$1"
	chmod 777 "h$1"
}

# daemon N [ARGS] : distworker --listen in host N, detached; it returns
# once the daemon listens. Its log is hN/log, its pid in hN/pid.
daemon() {
	_n=$1
	shift
	timeout 30 ip netns exec "$TAG-$_n" "$DW" --listen "$(addr "$_n"):$PORT" \
	    --user nobody --tls-cert "$C/h$_n.pem" --tls-key "$C/h$_n.key" \
	    --tls-ca "$C/ca.pem" -j 2 --log "$T_TMP/h$_n/log" --pidfile "$T_TMP/h$_n/pid" \
	    --cache-dir "$T_TMP/h$_n/cache" --grace 1 "$@"
}

# tx N : the --tx of host N's two slots
tx() {
	echo "2*tcp=$(addr "$1"):$PORT"
}

# tx1 N : one slot of host N
tx1() {
	echo "tcp=$(addr "$1"):$PORT"
}

# host_ok N WHAT : host N is up, its daemon listening
host_ok() {
	if host "$1" && daemon "$1"; then
		ok "$2"
	else
		not_ok "$2"
		sed 's/^/#   /' "h$1/log" 2>/dev/null
		done_testing
		exit 1
	fi
}

# The fault runs: host N's two workers first (w0, w1), then one of host
# 1 (w2), so that a fault after w0's first result finds both of host N's
# workers with a test running and most of the 48 still to come.
# fault_run N ARGS... : starts it in the background; returns once w0 has
# a result
fault_run() {
	_h=$1
	shift
	# shellcheck disable=SC2086
	bg 120 "$DM" $W $TLS "$@" --tx "$(tx "$_h")" --tx "$(tx1 1)" \
	    "$SUITES/farm_slow.so"
	wait_for "$T_TMP/bg.out" "[w0] PASS"
}

# lost_ok TEXT N WHAT : after host N was lost mid-run with farm_slow's
# 48 tests: the counts add up, each test once, its workers are reported
# down with "host lost", and at most what they were running (two tests)
# crashed, saying so. None may have: a test whose start the manager
# never heard of (the link went first) is simply run elsewhere.
lost_ok() {
	sum_is "$1" 48 "$3: the counts add up, no hang"
	each_once "$1" slow.ids "$3: every test exactly one result"
	like "$(downs "$1")" "host lost (tcp=$(addr "$2"):$PORT: " \
	    "$3: its workers are down, host lost, and which"
	_n=$(vlines "$1" | grep -c CRASH)
	if [ "$_n" -le 2 ]; then
		ok "$3 costs at most its running tests ($_n)"
	else
		not_ok "$3 costs at most its running tests ($_n)"
		printf '%s\n' "$1" | grep -v ' PASS ' | sed 's/^/#   | /'
	fi
	if [ "$_n" -gt 0 ]; then
		like "$(vlines "$1" | grep CRASH)" \
		    "host lost (tcp=$(addr "$2"):$PORT: " \
		    "$3: the lost tests say host lost, and which"
	else
		ok "$3: no test had been heard to start (none to report)"
	fi
}

# downs TEXT : the "[w0] down: why" lines
downs() {
	printf '%s\n' "$1" | grep -E '^\[[^]]*\] down: '
}

"$DM" --no-cache --no-config --list -q -j 1 "$SUITES/mgr_mixed.so" >mixed.ids
"$DM" --no-cache --no-config --list -q -j 1 "$SUITES/farm_slow.so" >slow.ids
W="--no-cache --no-config -v"

# ---- a run across three hosts -------------------------------------------------
host_ok 1 "host 1 is up, distworker listening on $(addr 1):$PORT"
host_ok 2 "host 2 is up"
host_ok 3 "host 3 is up"
like "$(cat h1/log)" "listening on $(addr 1):$PORT" \
    "the daemon listens on its host's own address"
# shellcheck disable=SC2086
run 90 "$DM" $W $TLS --tx "$(tx 1)" --tx "$(tx 2)" --tx "$(tx 3)" \
    "$SUITES/mgr_mixed.so"
is "$(closing "$OUT")" \
    "distmgr: 10 passed, 1 failed, 2 crashed, 1 timed out, 1 skipped, 1 xfailed" \
    "three hosts: every outcome, as with local workers"
each_once "$OUT" mixed.ids "three hosts: one result each"
for n in 1 2 3; do
	is "$(printf '%s\n' "$OUT" | grep -c "^\[w[0-9]\] tcp=$(addr "$n"):$PORT -- ")" 2 \
	    "host $n: two workers came up"
done
like "$OUT" "shipped $(wc -c <"$SUITES/mgr_mixed.so" | tr -d ' ') bytes (1 file sent" \
    "the suite travels to the hosts by content"
like "$(cat h1/log)" "session" "the daemon's log shows its sessions"
like "$(cat h1/log)" "started for run" "one for each worker of the run"

# The same run again finds the suite in every host's cache.
# shellcheck disable=SC2086
run 90 "$DM" $W $TLS --tx "$(tx 1)" --tx "$(tx 2)" --tx "$(tx 3)" \
    "$SUITES/mgr_mixed.so"
is "$(printf '%s\n' "$OUT" | grep -c 'shipped 0 bytes (1 file cached)')" 6 \
    "a second run sends no suite bytes to any host"

# Beyond loopback the manager will not go without TLS, and the daemon
# refuses a manager whose certificate another CA signed.
run 30 "$DM" $W --tx "tcp=$(addr 1):$PORT" "$SUITES/mgr_mixed.so"
is "$RC" 4 "beyond loopback, tcp= without TLS is a usage error"
sh "$DM_TOP/contrib/make-certs.sh" "$C/other" ca
sh "$DM_TOP/contrib/make-certs.sh" "$C/other" client mgr
run 60 "$DM" $W -j 1 --tx "tcp=$(addr 1):$PORT" --tls-cert "$C/other/mgr.pem" \
    --tls-key "$C/other/mgr.key" --tls-ca "$C/ca.pem" "$SUITES/mgr_mixed.so"
# (With TLS 1.3 the client is done with its handshake first: the
# daemon's alert comes after it, on the connection.)
like "$OUT$ERR" "(tcp=$(addr 1):$PORT) did not come up: " \
    "a manager from another farm is refused by the daemon"
like "$OUT$ERR" "unknown ca" "and it reports why"
each_once "$OUT" mixed.ids "a refused manager: its local worker runs every test"

# ---- a link set down mid-run ---------------------------------------------------
# Nothing tells the manager: only the heartbeat finds the host gone.
host_ok 4 "host 4 is up"
fault_run 4 --heartbeat 1
ip link set "${TAG}4" down
bg_wait
lost_ok "$OUT" 4 "a link set down"
like "$(downs "$OUT")" "stopped answering (no heartbeat for" \
    "a link set down: found by the heartbeat"

# ---- a veth deleted mid-run, with --reruns --------------------------------------
host_ok 5 "host 5 is up"
fault_run 5 --heartbeat 1 --reruns 1
ip link del "${TAG}5"
bg_wait
is "$RC" 0 "a veth deleted, --reruns 1: the run passes"
each_once "$OUT" slow.ids "a veth deleted: every test exactly one result"
is "$(vlines "$OUT" | grep -c CRASH)" 0 \
    "a veth deleted, --reruns 1: its tests ran again elsewhere"
like "$OUT$ERR" "tcp=$(addr 5):$PORT" "a veth deleted: the host is named"

# ---- a host's distworker killed mid-run -----------------------------------------
host_ok 6 "host 6 is up"
fault_run 6
# The daemon and its sessions: everything of it on that host.
# shellcheck disable=SC2046
kill -9 $(ip netns pids "$TAG-6")
bg_wait
lost_ok "$OUT" 6 "a killed daemon"
like "$(downs "$OUT")" "connection closed by peer" \
    "a killed daemon: the closed connection is the cause"
like "$OUT$ERR" "(tcp=$(addr 6):$PORT) did not come up: " \
    "a killed daemon: its replacement cannot connect, and says so"

# ---- a host that joins late -----------------------------------------------------
# Its daemon is not up when the run starts: the manager says so and
# tries again while tests remain; once it listens, its workers join.
host 7 || not_ok "host 7 is set up"
# Host 1's one worker (w0) alone would take twelve seconds.
# shellcheck disable=SC2086
bg 120 "$DM" $W $TLS --tx "$(tx1 1)" --tx "$(tx 7)" "$SUITES/farm_slow.so"
wait_for "$T_TMP/bg.out" "[w0] PASS"
daemon 7
bg_wait
is "$(closing "$OUT")" "distmgr: 48 passed" "a late host: every test passes"
each_once "$OUT" slow.ids "a late host: one result each"
like "$OUT$ERR" "did not come up: cannot connect to $(addr 7):$PORT" \
    "a late host: not there at the start, and reported"
like "$OUT$ERR" "trying again while tests remain" \
    "a late host: the manager says it will try again"
like "$(vlines "$OUT" | head -n 2)" "[w0] PASS" \
    "the run starts without the late host"
like "$(vlines "$OUT" | grep -E '^\[w[12]\]')" "PASS" \
    "the late host joins and runs tests"

done_testing
