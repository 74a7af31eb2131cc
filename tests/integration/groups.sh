#!/bin/sh
# groups.sh - groups and strategies, resource locks, serial tests and the
# synchronisation calls, with the real distmgr and distworker, boxed and
# in-process, with more workers than cores. The suites record when each
# test ran and in which process (tests/suites/record.h); the checks here
# read those records, never timings: what overlapped, what ran where,
# what ran once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mgr.sh"

DM="$BIN/distmgr"
cd "$T_TMP" || exit 1

# ---- records ---------------------------------------------------------------------
# A record line is "what id pid start end"; a line's group is its id's
# suite ("isofree/i0" -> isofree), or the id itself for set-up and
# tear-down lines, which name their group.

# overlaps FILE GROUP : lines of GROUP that overlap a line of another
# group, one "a b" pair a line
overlaps() {
	awk -v g="$2" '
	    function grp(id) { sub(/\/.*/, "", id); return id }
	    { id[NR] = $2; gr[NR] = grp($2); s[NR] = $4; e[NR] = $5 }
	    END {
		for (i = 1; i <= NR; i++) if (gr[i] == g)
		    for (j = 1; j <= NR; j++)
			if (gr[j] != g && s[i] < e[j] && s[j] < e[i])
			    print id[i] " " id[j]
	    }' "$1"
}

# inner FILE GROUP : pairs of GROUP's test lines that overlap each other
inner() {
	awk -v g="$2" '
	    function grp(id) { sub(/\/.*/, "", id); return id }
	    $1 == "test" && grp($2) == g { n++; id[n] = $2; s[n] = $4; e[n] = $5 }
	    END {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
		    if (s[i] < e[j] && s[j] < e[i]) print id[i] " " id[j]
	    }' "$1"
}

# pids_of FILE GROUP : the distinct pids of GROUP's lines
pids_of() {
	awk -v g="$2" '
	    function grp(id) { sub(/\/.*/, "", id); return id }
	    grp($2) == g { print $3 }' "$1" | sort -u | tr '\n' ' '
}

# brackets FILE GROUP : "ok" when GROUP's one set-up comes before all its
# tests began and its one tear-down after all ended
brackets() {
	awk -v g="$2" '
	    function grp(id) { sub(/\/.*/, "", id); return id }
	    $1 == "setup" && $2 == g { ns++; su = $4 }
	    $1 == "teardown" && $2 == g { nt++; td = $4 }
	    $1 == "test" && grp($2) == g {
		if (first == "" || $4 < first) first = $4
		if (last == "" || $5 > last) last = $5
	    }
	    END {
		if (ns != 1 || nt != 1) print ns + 0 " set-ups, " nt + 0 " tear-downs"
		else if (su > first || td < last) print "out of order"
		else print "ok"
	    }' "$1"
}

# ---- every strategy in one run ----------------------------------------------------
for mode in boxed --no-fork; do
	m=$mode
	[ "$m" = boxed ] && m=
	rm -f rec
	DM_RECORD=$T_TMP/rec run 120 "$DM" --no-cache -j 4 -v $m \
	    "$SUITES/groups.so"
	is "$RC" 0 "$mode: a run of every strategy passes"
	is "$(closing "$OUT")" "distmgr: 28 passed" "$mode: every test ran once"
	is "$(grep -c '^test ' rec)" 28 "$mode: every test left its record"
	for g in isofree isoser alone; do
		is "$(overlaps rec $g)" "" \
		    "$mode: $g overlaps nothing outside it"
	done
	is "$(inner rec db)" "" "$mode: tests holding lock 'db' never overlap"
	is "$(inner rec alone)" "" "$mode: .serial tests never overlap"
	for g in ser isoser; do
		p=$(pids_of rec $g)
		is "$(echo $p | wc -w)" 1 \
		    "$mode: serial group $g runs in one process ($p)"
		is "$(brackets rec $g)" ok \
		    "$mode: $g set up once before its tests, torn down once after"
		is "$(inner rec $g)" "" "$mode: $g runs one test at a time"
	done
	like "$(inner rec free)" "free/" \
	    "$mode: tests of a free group overlap when workers are free"
	like "$OUT" "isolated phase begins: group 'isofree' (isolated_free, 4 tests)" \
	    "$mode: -v says when an isolated_free phase begins"
	like "$OUT" "isolated phase ends: group 'isofree'" \
	    "$mode: -v says when it ends"
	like "$OUT" "isolated phase begins: group 'isoser' (isolated_serial, 4 tests)" \
	    "$mode: -v says when an isolated_serial phase begins"
	like "$OUT" "isolated phase begins: the serial tests (2)" \
	    "$mode: -v says when the .serial tests' phase begins"
done

run 60 "$DM" --no-cache -j 4 "$SUITES/groups.so"
unlike "$OUT" "isolated phase" "without -v the phases are not announced"

# ---- a strategy declared twice -------------------------------------------------------
run 60 "$DM" --no-cache -j 2 "$SUITES/conflict.so"
is "$RC" 3 "two strategies for one group: the suite is not run"
like "$ERR$OUT" "group 'db' is declared serial by DM_GROUP(db) at tests/suites/conflict.c:7 and isolated_free by DM_TEST(conflict, b) at tests/suites/conflict.c:10" \
    "the load error names both declarations"

# ---- dm_lock: no update lost ------------------------------------------------------------
for mode in boxed --no-fork; do
	m=$mode
	[ "$m" = boxed ] && m=
	rm -f counter counter.log
	SYNC_COUNTER=$T_TMP/counter run 180 "$DM" --no-cache -j 8 $m \
	    "$SUITES/sync_counter.so"
	is "$(closing "$OUT")" "distmgr: 100 passed" \
	    "$mode: 100 tests bump a counter under dm_lock with -j 8"
	is "$(cat counter 2>/dev/null)" 100 "$mode: no update is lost"
	is "$(sort -k2 -n counter.log | awk 'NR > 1 && $2 < prev { n++ }
	    { prev = $3 } END { print n + 0 }')" 0 \
	    "$mode: no two tests held the lock at once"
done

# ---- a lock holder that crashes or times out ---------------------------------------------
for mode in boxed --no-fork; do
	m=$mode
	[ "$m" = boxed ] && m=
	rm -f mark
	DM_MARK=$T_TMP/mark run 120 "$DM" --no-cache -j 2 -v $m -k crash \
	    "$SUITES/sync_misc.so"
	is "$(closing "$OUT")" "distmgr: 1 passed, 1 crashed" \
	    "$mode: a lock holder crashes"
	like "$(vlines "$OUT" | grep crash/waiter)" "PASS" \
	    "$mode: the next waiter gets the lock and is told the holder died"
	rm -f mark
	DM_MARK=$T_TMP/mark run 120 "$DM" --no-cache -j 2 -v $m -k hang \
	    "$SUITES/sync_misc.so"
	is "$(closing "$OUT")" "distmgr: 1 passed, 1 timed out" \
	    "$mode: a lock holder times out"
	like "$(vlines "$OUT" | grep hang/waiter)" "PASS" \
	    "$mode: the next waiter gets the lock and is told the holder died"
done

# ---- the board ----------------------------------------------------------------------------
for mode in boxed --no-fork; do
	m=$mode
	[ "$m" = boxed ] && m=
	run 60 "$DM" --no-cache -j 2 $m -k board "$SUITES/sync_misc.so"
	is "$(closing "$OUT")" "distmgr: 3 passed" \
	    "$mode: the board keeps strings and JSON text, and says unset"
done

# ---- a trail: set up once, torn down once --------------------------------------------------
for mode in boxed --no-fork; do
	m=$mode
	[ "$m" = boxed ] && m=
	rm -f rec
	DM_RECORD=$T_TMP/rec run 120 "$DM" --no-cache -j 4 $m \
	    "$SUITES/sync_trail.so"
	is "$(closing "$OUT")" "distmgr: 50 passed" \
	    "$mode: 50 tests on one trail across 4 workers"
	is "$(grep -c '^setup ' rec)" 1 "$mode: the trail is set up once"
	is "$(grep -c '^teardown ' rec)" 1 "$mode: the trail is torn down once"
	is "$(awk '$1 == "setup" { su = $4 } $1 == "teardown" { td = $4 }
	    $1 == "setup" { sue = $5 }
	    $1 == "test" { if (f == "" || $4 < f) f = $4; if ($5 > l) l = $5 }
	    END { print (sue <= f && td >= l) ? "ok" : "out of order" }' rec)" \
	    ok "$mode: set-up before every use, tear-down after every use"
	is "$(grep -c '^test ' rec)" 50 "$mode: every test used the trail"
done

# ---- a worker killed inside a serial group --------------------------------------------------
for mode in boxed --no-fork; do
	m=$mode
	[ "$m" = boxed ] && m=
	rm -f rec
	DM_RECORD=$T_TMP/rec run 120 "$DM" --no-cache -j 2 -v $m -k recover \
	    "$SUITES/sync_misc.so"
	is "$(closing "$OUT")" "distmgr: 5 passed, 1 crashed" \
	    "$mode: a worker killed in a serial group costs only its test"
	like "$(vlines "$OUT" | grep recover/r2)" "CRASH" \
	    "$mode: the test that killed it is the one that crashed"
	is "$(grep -c '^setup ' rec)" 2 \
	    "$mode: the rest of the group is set up again elsewhere"
	is "$(grep -c '^teardown ' rec)" 1 "$mode: and torn down once"
	p1=$(awk '$1 == "setup" { print $3; exit }' rec)
	p2=$(awk '$1 == "setup" { p = $3 } END { print p }' rec)
	is "$(awk -v p="$p2" '$1 == "test" && $3 == p { print $2 }' rec |
	    tr '\n' ' ')" "recover/r3 recover/r4 recover/r5 " \
	    "$mode: the rest runs as a group in the new process, after set-up"
	is "$(awk -v p="$p1" '$1 == "test" && $3 == p { print $2 }' rec |
	    tr '\n' ' ')" "recover/r0 recover/r1 recover/r2 " \
	    "$mode: what ran before is not run again"
done

exit 0
