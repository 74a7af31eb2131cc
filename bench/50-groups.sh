#!/bin/sh
# 50-groups.sh - what groups, locks and synchronisation cost.
#
#   lock calls    2,000 trivial tests that each take and release a lock of
#                 their own (no contention), against the same tests without:
#                 the cost of one dm_lock + dm_unlock round trip through
#                 worker and manager, boxed and in-process, -j 4
#   contended     200 tests of 5 ms that all hold one lock: once as a
#                 resource lock (.lock = "L", the scheduler keeps them
#                 apart) and once with dm_lock("L") alone (they run on
#                 every worker and queue at the manager). They cannot
#                 overlap, so the ideal is 200 x 5 ms = 1.0 s; the floor is
#                 the same 200 tests without a lock, -j 1 (one after
#                 another, each paying a boxed test's own cost)
#   isolated 10%  400 tests of 20 ms with -j 4 where 40 (10%) are one
#                 isolated_free group, against the same 400 all free: the
#                 ideal makespan is 2.0 s in both (the isolated phase runs
#                 its 40 tests 4 at a time), so the ratio to the all-free
#                 run is the cost of isolating them; and with the 40 as an
#                 isolated_serial group (ideal 0.8 + 1.8 = 2.6 s)
#
# Prints wall times and ratios; asserts nothing. Sleeping tests, so that
# the figures do not depend on how many cores are free.
set -u
: "${DM_BUILD:?run through make bench}"
: "${DM_TOP:?run through make bench}"
W="$DM_BUILD/bench-work/50-groups"
DM="$DM_BUILD/bin/distmgr"
INC="$DM_TOP/include"
mkdir -p "$W"
cd "$W" || exit 1
export NO_COLOR=1

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { if (t > 0) printf "%.0f", n / t; else print "-" }'; }
row() {	# row WORKLOAD RUNNER SECONDS NTESTS NOTE
	printf '%-16s %-26s %8s s %9s tests/s  %s\n' "$1" "$2" "$3" \
	    "$(rate "$4" "$3")" "$5"
}
timed() {	# timed OUTFILE CMD...
	_o=$1
	shift
	_a=$(now)
	"$@" >"$_o" 2>&1
	_b=$(now)
	T=$(secs "$_a" "$_b")
}
closing() { grep -E '^distmgr: ' "$1" | tail -n 1 | sed 's/ in [0-9.]*s$//'; }
# best3 OUTFILE CMD... : the best of three runs, in T
best3() {
	_best=""
	for _i in 1 2 3; do
		timed "$@"
		if [ -z "$_best" ] || awk -v a="$T" -v b="$_best" \
		    'BEGIN { exit !(a < b) }'; then
			_best=$T
		fi
	done
	T=$_best
}

prelude='#include <distmgr.h>
#include <stdio.h>
#include <time.h>
static void nap(long ms) { struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L }; while (nanosleep(&ts, &ts) == -1) ; }
static void own_lock(const char *n) { if (dm_lock(n) != 0) DM_FAIL("dm_lock"); if (dm_unlock(n) != 0) DM_FAIL("dm_unlock"); }'

gen() {	# NAME N BODY-OF-i... (a shell snippet printing test i's line)
	_name=$1
	_n=$2
	shift 2
	{
		echo "$prelude"
		i=0
		while [ $i -lt "$_n" ]; do
			eval "$*"
			i=$((i + 1))
		done
		echo 'static void unused(void) { (void)nap; (void)own_lock; }'
		echo 'DM_TEST(zz, unused) { unused(); }'
	} >"$_name.c"
	cc -O1 -fPIC -shared -w -I"$INC" -o "$_name.so" "$_name.c"
}

gen plain 2000 'echo "DM_TEST(p, t$i) { }"'
gen locked 2000 'echo "DM_TEST(l, t$i) { own_lock(\"k$i\"); }"'
gen contended 200 'echo "DM_TEST(c, t$i, .lock = \"L\") { nap(5); }"'
gen serial1 200 'echo "DM_TEST(c, t$i) { nap(5); }"'
gen dmlock 200 'echo "DM_TEST(c, t$i) { if (dm_lock(\"L\") != 0) DM_FAIL(\"lock\"); nap(5); dm_unlock(\"L\"); }"'
gen allfree 400 'echo "DM_TEST(f, t$i) { nap(20); }"'
gen isofree 400 'if [ $i -lt 40 ]; then echo "DM_TEST(iso, t$i, .group = \"iso\", .strategy = \"isolated_free\") { nap(20); }"; else echo "DM_TEST(f, t$i) { nap(20); }"; fi'
gen isoserial 400 'if [ $i -lt 40 ]; then echo "DM_TEST(iso, t$i, .group = \"iso\", .strategy = \"isolated_serial\") { nap(20); }"; else echo "DM_TEST(f, t$i) { nap(20); }"; fi'

printf '%-16s %-26s %10s %19s\n' workload runner wall rate
for mode in boxed --no-fork; do
	m=$mode
	[ "$m" = boxed ] && m=
	best3 out "$DM" --no-cache -q -j 4 $m plain.so
	tp=$T
	row "lock calls" "plain, $mode" "$tp" 2001 "$(closing out)"
	best3 out "$DM" --no-cache -q -j 4 $m locked.so
	tl=$T
	row "lock calls" "dm_lock+unlock, $mode" "$tl" 2001 "$(closing out)"
	echo "  -> $(awk -v a="$tl" -v b="$tp" 'BEGIN { printf "%.0f", (a - b) / 2000 * 4 * 1e6 }') us of a worker's time per dm_lock+dm_unlock pair ($mode), wall ratio $(ratio "$tl" "$tp")"
done

best3 out "$DM" --no-cache -q -j 1 serial1.so
row contended "no lock, -j 1 (floor)" "$T" 201 "$(closing out); ratio $(ratio "$T" 1.0) to 1.0 s"
best3 out "$DM" --no-cache -q -j 4 contended.so
row contended ".lock, -j 4" "$T" 201 "$(closing out); ideal 1.0 s, ratio $(ratio "$T" 1.0)"
best3 out "$DM" --no-cache -q -j 4 dmlock.so
row contended "dm_lock, -j 4" "$T" 201 "$(closing out); ideal 1.0 s, ratio $(ratio "$T" 1.0)"

best3 out "$DM" --no-cache -q -j 4 allfree.so
tf=$T
row "isolated 10%" "all free, -j 4" "$tf" 401 "$(closing out); ideal 2.0 s, ratio $(ratio "$tf" 2.0)"
best3 out "$DM" --no-cache -q -j 4 isofree.so
ti=$T
row "isolated 10%" "isolated_free, -j 4" "$ti" 401 "$(closing out); ideal 2.0 s, ratio $(ratio "$ti" 2.0) ($(ratio "$ti" "$tf") to all free)"
best3 out "$DM" --no-cache -q -j 4 isoserial.so
ts=$T
row "isolated 10%" "isolated_serial, -j 4" "$ts" 401 "$(closing out); ideal 2.6 s, ratio $(ratio "$ts" 2.6)"
exit 0
