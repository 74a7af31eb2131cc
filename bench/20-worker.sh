#!/bin/sh
# 20-worker.sh - one distworker running a trivial test: boxed runs per
# second beside the physical floor (a plain fork, call, waitpid loop on
# this machine, in a small process), beside the same loop in a process
# that has mapped what a worker maps (its libraries and the suite: the
# floor for a process of the worker's shape), and in-process runs per
# second with every result encoded and sent to a reader. Boxed runs
# twice: through the box helper (the default), and with the worker
# forking each test itself (DISTWORKER_BOX=none, as before the helper).
#
# Rounds are interleaved and the median of each is shown, because a
# machine shared with other work moves single runs by a factor of two.
# CPU microseconds per test (the worker and its children, or the floor
# loop and its children) vary far less: they are shown too. Nothing here
# asserts a time.
set -u
: "${DM_BUILD:?run through make bench (DM_BUILD unset)}"
bench="$DM_BUILD/bench/bench_worker"
rounds=${BENCH_ROUNDS:-5}
boxed_n=${BENCH_BOXED_N:-5000}
inproc_n=${BENCH_INPROC_N:-1000000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dmbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

[ -x "$bench" ] || { echo "no $bench: make bench builds it"; exit 1; }

i=0
while [ "$i" -lt "$rounds" ]; do
	"$bench" floor "$boxed_n" >>"$tmp/floor" || exit 1
	"$bench" floor-worker "$boxed_n" >>"$tmp/floorw" || exit 1
	"$bench" boxed "$boxed_n" >>"$tmp/boxed" || exit 1
	"$bench" boxed-fork "$boxed_n" >>"$tmp/boxedf" || exit 1
	"$bench" inproc "$inproc_n" >>"$tmp/inproc" || exit 1
	i=$((i + 1))
done

# median FILE FIELD: the median of "...: R/s, C us CPU per test" lines,
# FIELD 1 for the rate, 2 for the CPU.
median() {
	sed -n 's/.*: \([0-9]*\)\/s, \([0-9.]*\) us CPU per test/\1 \2/p' "$1" |
	    awk -v f="$2" '{ print $f }' | sort -n |
	    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

floor=$(median "$tmp/floor" 1)
floorw=$(median "$tmp/floorw" 1)
boxed=$(median "$tmp/boxed" 1)
boxedf=$(median "$tmp/boxedf" 1)
inproc=$(median "$tmp/inproc" 1)
printf '%-34s %12s %14s\n' "one worker, trivial test" "runs/s" "us CPU/test"
printf '%-34s %12s %14s\n' "fork+call+waitpid floor" "$floor" \
    "$(median "$tmp/floor" 2)"
printf '%-34s %12s %14s\n' "same loop, worker's libraries" "$floorw" \
    "$(median "$tmp/floorw" 2)"
printf '%-34s %12s %14s\n' "distworker boxed (box helper)" "$boxed" \
    "$(median "$tmp/boxed" 2)"
printf '%-34s %12s %14s\n' "distworker boxed, worker forks" "$boxedf" \
    "$(median "$tmp/boxedf" 2)"
printf '%-34s %12s %14s\n' "distworker in-process" "$inproc" \
    "$(median "$tmp/inproc" 2)"
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
echo "boxed / floor: $(pct "$boxed" "$floor") (worker forking:" \
    "$(pct "$boxedf" "$floor"); medians of $rounds rounds; target 80% of" \
    "the floor); in-process target 200000/s"
