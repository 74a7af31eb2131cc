#!/bin/sh
# 40-farm.sh - the farm's speed: tests/s of the trivial workload (boxed,
# two workers) through a `distworker --listen` daemon over tcp= on
# loopback, compared with local popen workers in the same run (target:
# at least 80%); then with 10 ms more round trip between the manager and
# the daemon (target: at least 50% of popen, which only pipelining can
# give: a batch's results come back while the next batch is under way).
#
# The 10 ms come from tc netem on the loopback of a network namespace
# (5 ms each way; the manager and the daemon both inside it) where that
# works (root, ip netns, sch_netem); otherwise from bench_delay, a relay
# that holds every byte 5 ms each way. The table says which.
#
# Each figure is the best of BENCH_REPEAT rounds (default 3), every
# configuration run once a round, since the machine may be shared. Prints times, tests/s and ratios; asserts
# nothing.
set -u
: "${DM_BUILD:?run through make bench}"
: "${DM_TOP:?run through make bench}"
W="$DM_BUILD/bench-work/40-farm"
DM="$DM_BUILD/bin/distmgr"
DW="$DM_BUILD/bin/distworker"
RELAY="$DM_BUILD/bench/bench_delay"
INC="$DM_TOP/include"
N=${BENCH_FARM_TESTS:-5000}
REPEAT=${BENCH_REPEAT:-3}
DELAY_MS=10
mkdir -p "$W"
cd "$W" || exit 1
export NO_COLOR=1
NS=""
PIDS=""
cleanup() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null
	done
	if [ -n "$NS" ]; then
		for p in $(ip netns pids "$NS" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null
		done
		ip netns del "$NS" 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'cleanup; exit 2' INT TERM HUP

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { if (t > 0) printf "%.0f", n / t; else print "-" }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "-" }'; }
closing() { grep -E '^distmgr: ' "$1" | tail -n 1; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
	    echo $((20000 + $$ % 20000))
}

row() {	# row RUNNER SECONDS NOTE
	printf '%-44s %8s s %8s tests/s  %s\n' "$1" "$2" "$(rate "$N" "$2")" "$3"
}

# ---- the workload and the daemon ---------------------------------------------
{
	echo '#include <distmgr.h>'
	i=0
	while [ $i -lt "$N" ]; do
		echo "DM_TEST(trivial, t$i) { }"
		i=$((i + 1))
	done
} >farm_trivial.c
cc -O1 -fPIC -shared -w -I"$INC" -o farm_trivial.so farm_trivial.c

AS=""
if [ "$(id -u)" = 0 ]; then
	AS="--user nobody"
	chmod 755 "$W"
fi

# daemon NAME ADDR:PORT [NETNS [ARGS...]] : a daemon with two slots,
# detached; returns once it listens. Its log is NAME.log.
daemon() {
	_n=$1
	_a=$2
	_ns=""
	[ -n "${3:-}" ] && _ns="ip netns exec $3"
	shift 2
	[ $# -gt 0 ] && shift
	rm -f "$W/$_n.pid"
	mkdir -p "$W/$_n.cache"
	chmod 777 "$W/$_n.cache"
	# shellcheck disable=SC2086
	$_ns "$DW" --listen "$_a" -j 2 $AS --cache-dir "$W/$_n.cache" \
	    --log "$W/$_n.log" --pidfile "$W/$_n.pid" "$@"
	_rc=$?
	[ -f "$W/$_n.pid" ] && PIDS="$PIDS $(cat "$W/$_n.pid")"
	return $_rc
}

P=$(free_port)
if ! daemon loop "127.0.0.1:$P"; then
	echo "distworker --listen did not start: $(tail -n 3 loop.log 2>/dev/null)"
	exit 1
fi
# The suite into the daemon's cache once: every timed run finds it there.
"$DM" --no-cache --no-config -q --tx "tcp=127.0.0.1:$P" farm_trivial.so \
    >warm.txt 2>&1

D="--no-cache --no-config"

# ---- the other ends: TLS, and 10 ms more round trip ----------------------------
# The same over TLS, both sides authenticated, as beyond loopback.
TLS=""
C="$W/certs"
if command -v openssl >/dev/null 2>&1 &&
    sh "$DM_TOP/contrib/make-certs.sh" "$C" ca &&
    sh "$DM_TOP/contrib/make-certs.sh" "$C" server farm &&
    sh "$DM_TOP/contrib/make-certs.sh" "$C" client mgr; then
	chmod 755 "$C"
	chmod 644 "$C"/*.pem "$C"/*.key
	PT=$(free_port)
	if daemon tls "127.0.0.1:$PT" "" --tls-cert "$C/farm.pem" \
	    --tls-key "$C/farm.key" --tls-ca "$C/ca.pem"; then
		TLS="--tls-cert $C/mgr.pem --tls-key $C/mgr.key --tls-ca $C/ca.pem"
		# shellcheck disable=SC2086
		"$DM" $D -q $TLS --tx "tcp=127.0.0.1:$PT" farm_trivial.so \
		    >warm.txt 2>&1
	fi
fi

how=""
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null 2>&1 &&
    command -v tc >/dev/null 2>&1; then
	NS="dmbench$$"
	if ip netns add "$NS" 2>/dev/null && ip -n "$NS" link set lo up &&
	    ip netns exec "$NS" tc qdisc add dev lo root netem \
	    delay "$((DELAY_MS / 2))ms" 2>/dev/null; then
		PN=$(free_port)
		if daemon netns "127.0.0.1:$PN" "$NS"; then
			how="tc netem on a namespace's loopback"
			label="tcp= +${DELAY_MS} ms RTT (tc netem)"
			# shellcheck disable=SC2086
			ip netns exec "$NS" "$DM" $D -q \
			    --tx "tcp=127.0.0.1:$PN" farm_trivial.so \
			    >warm.txt 2>&1
		else
			ip netns del "$NS" 2>/dev/null
			NS=""
		fi
	else
		ip netns del "$NS" 2>/dev/null
		NS=""
	fi
fi
if [ -z "$how" ]; then
	R=$(free_port)
	"$RELAY" "$R" 127.0.0.1 "$P" "$DELAY_MS" >relay.out 2>&1 &
	PIDS="$PIDS $!"
	i=0
	while ! grep -q ready relay.out 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	how="the bench_delay relay (no tc netem here)"
	label="tcp= +${DELAY_MS} ms RTT (bench_delay relay)"
fi

# run_KIND : one timed run of each configuration, its output in out.KIND
# shellcheck disable=SC2086
run_popen() { "$DM" $D -j 2 farm_trivial.so; }
# shellcheck disable=SC2086
run_tcp() { "$DM" $D --tx "2*tcp=127.0.0.1:$P" farm_trivial.so; }
# shellcheck disable=SC2086
run_tls() { "$DM" $D $TLS --tx "2*tcp=127.0.0.1:$PT" farm_trivial.so; }
run_far() {
	if [ -n "$NS" ]; then
		# shellcheck disable=SC2086
		ip netns exec "$NS" "$DM" $D --tx "2*tcp=127.0.0.1:$PN" \
		    farm_trivial.so
	else
		# shellcheck disable=SC2086
		"$DM" $D --tx "2*tcp=127.0.0.1:$R" farm_trivial.so
	fi
}

# ---- measuring -----------------------------------------------------------------
# Round after round, each configuration once a round, so that a busy
# spell of a shared machine falls on all of them alike; the best of
# each is kept.
KINDS="popen tcp far"
[ -n "$TLS" ] && KINDS="popen tcp tls far"
round=0
while [ $round -lt "$REPEAT" ]; do
	for k in $KINDS; do
		_a=$(now)
		"run_$k" >"out.$k" 2>&1
		_b=$(now)
		_t=$(secs "$_a" "$_b")
		eval "_best=\${best_$k:-}"
		_best=$(awk -v a="$_best" -v b="$_t" 'BEGIN { if (a == "" || b < a) print b; else print a }')
		eval "best_$k=\$_best"
	done
	round=$((round + 1))
done

printf '\n%d trivial tests, two workers (boxed), best of %d rounds\n\n' "$N" "$REPEAT"
printf '%-44s %10s %16s  %s\n' runner wall rate "result / ratio"
popen=$best_popen
vs() {	# vs SECONDS : its rate as a share of popen's
	pct "$(rate "$N" "$1")" "$(rate "$N" "$popen")"
}
row "popen (-j 2)" "$popen" "$(closing out.popen)"
row "tcp= on loopback" "$best_tcp" \
    "$(closing out.tcp); $(vs "$best_tcp") of popen (target >= 80%)"
[ -n "$TLS" ] && row "tcp= on loopback, TLS" "$best_tls" \
    "$(closing out.tls); $(vs "$best_tls") of popen"
row "$label" "$best_far" \
    "$(closing out.far); $(vs "$best_far") of popen (target >= 50%)"
echo
echo "latency added by: $how"
