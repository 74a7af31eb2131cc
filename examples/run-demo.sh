#!/bin/sh
# run-demo.sh BUILD [distmgr options...] - what `make demo` runs: the demo
# suite (examples/demo.c) under distmgr -j 4.
#
# The suite fails on purpose (a failed assertion, a crash, a timeout), so
# distmgr's exit status 1 is the expected one here and this script then
# exits 0; anything else (0 included: the failures went missing) is an
# error of distmgr's, and this script exits with distmgr's status, or 1.
set -u
build=${1:-build}
[ $# -gt 0 ] && shift
distmgr="$build/bin/distmgr"
suite="$build/examples/demo.so"

if [ ! -x "$distmgr" ]; then
	echo "run-demo: $distmgr is not built (the manager is not in this" \
	    "tree yet); nothing to run" >&2
	exit 1
fi
if [ ! -f "$suite" ]; then
	echo "run-demo: $suite is not built; run make first" >&2
	exit 1
fi

echo "Running the demo suite (a small string and INI library) on 4 workers:" \
    "expect passes, a failure, a crash, a timeout, a skip and an xfail."
echo
"$distmgr" -j 4 "$@" "$suite"
rc=$?
echo
case $rc in
1)	echo "run-demo: distmgr exited 1 because the demo fails on purpose;" \
	    "that is the expected result."
	exit 0 ;;
0)	echo "run-demo: distmgr exited 0, but the demo has failing tests:" \
	    "their results went missing" >&2
	exit 1 ;;
*)	echo "run-demo: distmgr exited $rc (expected 1)" >&2
	exit "$rc" ;;
esac
