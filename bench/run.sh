#!/bin/sh
# run.sh BUILD - run every benchmark script bench/NN-*.sh in order. Each
# prints its own table: figures measured in this run, with ratios to the
# peers measured in the same run. Nothing here asserts times.
set -u
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
export DM_BUILD="$top/$build" DM_TOP="$top"
status=0
for b in "$top"/bench/[0-9][0-9]-*.sh; do
	[ -f "$b" ] || continue
	echo "== $(basename "$b" .sh)"
	sh "$b" || status=1
	echo
done
exit $status
