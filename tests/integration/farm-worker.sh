#!/bin/sh
# farm-worker.sh - the farm side with the real distworker behind
# --tx exec=: suites and --ship trees by content into its blob cache
# (the second run sends nothing, a changed file alone is sent again),
# tests that read the shipped tree from //chdir=, a transfer corrupted
# on the way (farm-corrupt.py) refused by the worker's hash check and
# costing only that worker, and --dist each across two host groups
# naming the host of every result.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mgr.sh"

if ! command -v python3 >/dev/null 2>&1; then
	echo "ok 1 - # SKIP no python3 for the corrupting relay"
	exit 0
fi
DM="$BIN/distmgr"
DW="$BIN/distworker"
CORRUPT="$DM_TOP/tests/integration/farm-corrupt.py"
cd "$T_TMP" || exit 1
W="--no-cache --no-config"
X="exec=$DW --stdio --cache-dir $T_TMP/cache"

"$DM" $W --list -q -j 1 "$SUITES/mgr_mixed.so" >mixed.ids
"$DM" $W --list -q -j 1 "$SUITES/farm_files.so" >files.ids

# ---- suites by content, cached -------------------------------------------------
run 60 "$DM" $W -v --tx "2*$X" "$SUITES/mgr_mixed.so"
is "$(closing "$OUT")" \
    "distmgr: 10 passed, 1 failed, 2 crashed, 1 timed out, 1 skipped, 1 xfailed" \
    "a shipped suite: every outcome, as with local workers"
each_once "$OUT" mixed.ids "a shipped suite: one result each"
size=$(wc -c <"$SUITES/mgr_mixed.so" | tr -d ' ')
like "$OUT" "shipped $size bytes (1 file sent, 0 cached)" \
    "the first run sends the suite, its size in bytes"
like "$OUT" "shipped 0 bytes (1 file cached)" \
    "the other worker of the host finds it in the cache"
DISTMGR_STATS=1 run 60 "$DM" $W -v --tx "2*$X" "$SUITES/mgr_mixed.so"
is "$(printf '%s\n' "$OUT" | grep -c 'shipped 0 bytes (1 file cached)')" 2 \
    "the second run of an unchanged suite sends no suite bytes"
like "$ERR" "shipped_bytes 0" "and the stats count none"

# ---- a tree the tests read -----------------------------------------------------------
mkdir -p data/sub
echo "shipped content" >data/a.txt
echo "in a subdirectory" >data/sub/b.txt
printf '#!/bin/sh\necho tool\n' >data/tool.sh
chmod 755 data/tool.sh
echo "object" >data/junk.o
run 60 "$DM" $W -v --tx "2*$X//chdir=data" --ship data --ship-ignore '*.o' \
    "$SUITES/farm_files.so"
is "$(closing "$OUT")" "distmgr: 4 passed" \
    "tests read the shipped tree: files, subdirectories, modes, ignores"
each_once "$OUT" files.ids "a shipped tree: one result each"
echo "shipped content" >data/a.txt
echo "changed" >data/sub/b.txt
run 60 "$DM" $W -v --tx "2*$X//chdir=data" --ship data --ship-ignore '*.o' \
    "$SUITES/farm_files.so"
like "$OUT" "shipped 8 bytes (1 file sent, 3 cached)" \
    "a changed file alone is sent again"
like "$(vlines "$OUT" | grep reads_a_subdirectory)" "FAIL" \
    "and the tests see the change"

# ---- a transfer corrupted on the way ------------------------------------------------------
run 60 "$DM" $W -v \
    --tx "exec=python3 $CORRUPT $DW --stdio --cache-dir $T_TMP/cache2" \
    --tx "$X" "$SUITES/mgr_mixed.so"
like "$OUT$ERR" "w0 (exec=python3 $CORRUPT" "the corrupted worker is named"
like "$OUT$ERR" "(BLOB_CORRUPT); going on without it" \
    "the worker refuses the corrupted suite by its hash"
each_once "$OUT" mixed.ids "a corrupted transfer: the other worker runs every test"
if [ -d "$T_TMP/cache2" ]; then
	n=$(find "$T_TMP/cache2" -type f -size +1000c | wc -l | tr -d ' ')
	is "$n" 0 "nothing corrupted was kept in the cache"
fi

# ---- --dist each across host groups ---------------------------------------------------
run 60 "$DM" $W -v --dist each --tx "2*$X//id=linux" -j 1 \
    --json=events.jsonl "$SUITES/mgr_mixed.so"
is "$(closing "$OUT")" \
    "distmgr: 20 passed, 2 failed, 4 crashed, 2 timed out, 2 skipped, 2 xfailed" \
    "--dist each: every test once on each of two host groups"
is "$(vlines "$OUT" | awk '$3 == "mixed/fail"' | wc -l | tr -d ' ')" 2 \
    "--dist each: a test has one result per group"
is "$(vlines "$OUT" | awk '$1 ~ /^\[linux-/' | wc -l | tr -d ' ')" 16 \
    "--dist each: the two-worker group runs each test once"
python3 - events.jsonl <<'EOF' && ok "--dist each: every JSON result names its host" || not_ok "--dist each: every JSON result names its host"
import json, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "test":
        assert e.get("host"), e
        n += 1
assert n == 32, n
EOF

done_testing
