#!/bin/sh
# 10-protocol.sh - frames per second and bytes per second of the protocol
# layer: in memory, and through a socketpair with the event loop (see
# bench/bench_protocol.c). BENCH_SECONDS sets how long each row runs.
set -u
bin="${DM_BUILD:?run through bench/run.sh}/bench/bench_protocol"
if [ ! -x "$bin" ]; then
	echo "10-protocol: $bin is not built (make $bin)" >&2
	exit 1
fi
exec "$bin" "${BENCH_SECONDS:-1}"
