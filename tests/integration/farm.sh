#!/bin/sh
# farm.sh - distmgr's farm side against the scripted worker
# (mgr-fake-worker.py) started through --tx exec= and a stand-in ssh:
# node lines that show the spec, shipping by content (the second run
# sends nothing, a changed file alone is sent again, a corrupted
# transfer costs only that worker), hosts that never come up, a host
# that joins late, hosts lost mid-run, --dist each across host groups,
# and distmgr.conf. Under every fault: the closing counts add up and
# each test has exactly one result per host group.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mgr.sh"

if ! command -v python3 >/dev/null 2>&1; then
	echo "ok 1 - # SKIP no python3 for the scripted worker"
	exit 0
fi
DM="$BIN/distmgr"
CORRUPT="$DM_TOP/tests/integration/farm-corrupt.py"
X="exec=python3 $FAKE"
cd "$T_TMP" || exit 1

many() {	# many PREFIX N OUTCOME SECONDS
	_i=1
	while [ "$_i" -le "$2" ]; do
		echo "$1$_i $3 $4"
		_i=$((_i + 1))
	done
}

# shipped TEXT WORKER : what -v said WORKER was sent
shipped() {
	printf '%s\n' "$1" | sed -n "s/^\[$2\] shipped \(.*\)/\1/p"
}

{ many f/t 20 pass 0.01; echo "f/bad fail 0.01 oops"; } >basic
cut -d' ' -f1 basic >basic.ids

# ---- exec= workers -------------------------------------------------------------
run 30 "$DM" --no-cache -v --tx "2*$X" basic
is "$RC" 1 "exec=: a failure exits 1"
is "$(closing "$OUT")" "distmgr: 20 passed, 1 failed" \
    "exec=: every test has its result"
each_once "$OUT" basic.ids "exec=: each test has one result line"
is "$(printf '%s\n' "$OUT" | grep -c "^\[w[01]\] $X -- linux x86_64")" 2 \
    "exec=: the node line shows the spec"
like "$OUT" "[w0] shipped " "exec=: the suite is sent by content"

# A shipped suite's lists name it as it was installed, by its file name,
# not by the path given here.
run 30 "$DM" --no-cache -v --tx "$X" "$T_TMP/basic"
is "$(closing "$OUT")" "distmgr: 20 passed, 1 failed" \
    "exec=: a suite given by its full path is matched by its name"

# //id= names the workers, //env: reaches them through hello.
FAKE_LOG=$T_TMP/log.txt run 30 "$DM" --no-cache -v \
    --tx "2*$X//id=far//env:FARM=1" basic
like "$OUT" "[far-0] PASS " "//id= names the workers"
like "$OUT" "[far-1] " "//id= with a count numbers them"

# ---- shipping: the second run sends nothing, a change only itself -------------
mkdir -p cache data/sub
echo "hello" >data/a.txt
echo "x" >data/sub/b.txt
ln -s a.txt data/same
ln -s /etc/hostname data/outside
echo junk >data/skip.o
export FAKE_CACHE="$T_TMP/cache"
run 30 "$DM" --no-cache -v --tx "2*$X" --ship data --ship-ignore '*.o' basic
like "$(shipped "$OUT" w0)$(shipped "$OUT" w1)" "3 files sent, 0 cached" \
    "first run: the suite and the tree are sent"
n0=$(printf '%s\n' "$OUT" | grep -c '^\[w[01]\] shipped 0 bytes (3 files cached)')
is "$n0" 1 "first run: one transfer per host group, the other finds it cached"
like "$ERR$OUT" "skipped outside: a symbolic link out of the tree" \
    "a link out of the tree is skipped, with a warning"
run 30 "$DM" --no-cache -v --tx "2*$X" --ship data --ship-ignore '*.o' basic
is "$(printf '%s\n' "$OUT" | grep -c '^\[w[01]\] shipped 0 bytes (3 files cached)')" 2 \
    "second run: no suite or tree bytes are sent"
echo "hello again" >data/a.txt
DISTMGR_STATS=1 run 30 "$DM" --no-cache -v --tx "2*$X" --ship data \
    --ship-ignore '*.o' basic
like "$OUT" "shipped 12 bytes (1 file sent, 2 cached)" \
    "a changed file alone is sent again"
like "$ERR" "shipped_bytes 12" "the bytes shipped are counted in the stats"
unset FAKE_CACHE

# ---- a corrupted transfer ------------------------------------------------------
run 30 "$DM" --no-cache -v --tx "exec=python3 $CORRUPT python3 $FAKE" \
    --tx "$X" basic
is "$RC" 1 "a corrupted transfer: the run goes on with the other worker"
like "$OUT$ERR" "cannot load the suite: blob " "the corrupted suite is refused"
like "$OUT$ERR" "(BLOB_CORRUPT); going on without it" \
    "the refusal names the error"
is "$(closing "$OUT")" "distmgr: 20 passed, 1 failed" \
    "a corrupted transfer: every test still has its result"
each_once "$OUT" basic.ids "a corrupted transfer: one result each"

# ---- hosts that never come up --------------------------------------------------
run 30 "$DM" --no-cache -v --tx "exec=echo no route >&2; exit 7" \
    --tx "tcp=127.0.0.1:1" --tx "$X" basic
is "$RC" 1 "hosts that never come up: the run goes on (exit 1: a failure)"
like "$OUT$ERR" "w0 (exec=echo no route >&2; exit 7) did not come up: worker w0 (pid" \
    "an exec= that exits is reported"
like "$OUT$ERR" "its stderr ended: no route" "with what it said"
like "$OUT$ERR" "w1 (tcp=127.0.0.1:1) did not come up: cannot connect to 127.0.0.1:1" \
    "an unreachable daemon is reported"
each_once "$OUT" basic.ids "hosts that never come up: one result each"
run 30 "$DM" --no-cache --tx "exec=exit 7" --tx "tcp=127.0.0.1:1" basic
is "$RC" 3 "no worker at all comes up: exit 3"
like "$OUT$ERR" "no worker came up (2 tried)" "and it says so"
run 30 "$DM" --no-cache --tx "tcp=10.1.2.3:7700" basic
is "$RC" 4 "plain TCP beyond loopback is a usage error"

# ---- a host that joins late ----------------------------------------------------
many l/t 30 pass 0.1 >late
cut -d' ' -f1 late >late.ids
FAKE_HELLO_DELAY=4 FAKE_HELLO_DELAY_FOR=w1 run 60 "$DM" --no-cache -v \
    --tx "$X" --tx "$X" late
is "$(closing "$OUT")" "distmgr: 30 passed" "a late host: every test passes"
each_once "$OUT" late.ids "a late host: one result each"
like "$(vlines "$OUT" | head -n 3)" "[w0] PASS" \
    "the run starts without the late host"
like "$(vlines "$OUT")" "[w1] PASS" "the late host joins and runs tests"

# ---- hosts lost mid-run -------------------------------------------------------
{ many k/a 10 pass 0.02; echo "k/die die 0.05"; many k/b 10 pass 0.02; } >die
cut -d' ' -f1 die >die.ids
run 30 "$DM" --no-cache -v --tx "$X" --tx "$X" --max-worker-restart 4 die
is "$(closing "$OUT")" "distmgr: 20 passed, 1 crashed" \
    "a host lost mid-run costs only its running test"
like "$(vlines "$OUT" | grep CRASH)" "k/die" "the lost test is the one it ran"
like "$(vlines "$OUT" | grep CRASH)" "host lost (exec=python3 " \
    "its cause is the lost host"
each_once "$OUT" die.ids "a lost host: one result each"

mkdir -p state
{ many r/a 10 pass 0.02; echo "r/once diehard 0.05"; many r/b 10 pass 0.02; } >once
cut -d' ' -f1 once >once.ids
FAKE_STATE=$T_TMP/state run 30 "$DM" --no-cache -v --reruns 1 \
    --tx "$X" --tx "$X" once
is "$(closing "$OUT")" "distmgr: 20 passed, 1 flaky" \
    "with --reruns, the lost host's test is run again elsewhere"
each_once "$OUT" once.ids "rerun after a lost host: one result each"

{ many h/a 10 pass 0.02; echo "h/hang hang 0.05"; many h/b 10 pass 0.02; } >hang
cut -d' ' -f1 hang >hang.ids
run 60 "$DM" --no-cache -v --heartbeat 1 --tx "$X" --tx "$X" hang
is "$(closing "$OUT")" "distmgr: 20 passed, 1 crashed" \
    "a host gone silent is found by its heartbeat"
like "$(vlines "$OUT" | grep CRASH)" "host lost (exec=python3 " \
    "a silent host: its test says host lost"
like "$(vlines "$OUT" | grep CRASH)" "stopped answering (no heartbeat" \
    "a silent host: and why"
each_once "$OUT" hang.ids "a silent host: one result each"

# ---- --dist each across host groups --------------------------------------------
printf '%s\n' "e/a pass 0.01" "e/b fail 0.01" "e/c pass 0.01" >each
run 30 "$DM" --no-cache -v --dist each --tx "2*$X" --tx "$X//id=other" each
is "$(closing "$OUT")" "distmgr: 4 passed, 2 failed" \
    "--dist each runs every test once per host group"
is "$(vlines "$OUT" | awk '$3 == "e/b"' | wc -l | tr -d ' ')" 2 \
    "--dist each: a test twice with two groups"
is "$(vlines "$OUT" | awk '$1 == "[other]"' | wc -l | tr -d ' ')" 3 \
    "--dist each: the one-worker group runs every test"
is "$(vlines "$OUT" | awk '$1 != "[other]"' | wc -l | tr -d ' ')" 3 \
    "--dist each: the two-worker group runs every test once"

# A group that never comes up: its tests are not run, the others are.
run 30 "$DM" --no-cache -v --dist each --tx "$X" --tx "tcp=127.0.0.1:1" each
is "$(closing "$OUT")" "distmgr: 2 passed, 1 failed, 3 not run" \
    "--dist each: a group that never comes up leaves its tests not run"

# ---- ssh= through a stand-in ssh -------------------------------------------------
# The stand-in runs the remote command as the remote shell would; the
# remote worker is the fake, named with //worker=.
cat >fakessh <<'EOF'
#!/bin/sh
echo "$*" >>"$SSH_LOG"
for last; do :; done
exec sh -c "$last"
EOF
chmod +x fakessh
printf '#!/bin/sh\nexec python3 %s "$@"\n' "$FAKE" >"remote worker"
chmod +x "remote worker"
SSH_LOG=$T_TMP/ssh.log run 30 "$DM" --no-cache -v \
    --ssh-command "$T_TMP/fakessh -o StrictHostKeyChecking=no" \
    --tx "2*ssh=ci@farm9:2222//worker=$T_TMP/remote worker" basic
is "$(closing "$OUT")" "distmgr: 20 passed, 1 failed" \
    "ssh=: every test has its result"
like "$(head -n 1 ssh.log)" "-o StrictHostKeyChecking=no -o BatchMode=yes -T -x -p 2222 -l ci -- farm9 '$T_TMP/remote worker' --stdio" \
    "ssh=: ssh gets BatchMode, the port, the user, the quoted worker"
like "$OUT" "[w1] ssh=ci@farm9:2222//worker=" "ssh=: the node line shows the spec"

# ---- distmgr.conf ------------------------------------------------------------------
mkdir -p proj
cp basic proj/
cat >proj/distmgr.conf <<EOF
# the project's farm
tx = 2*$X//id=conf
no-cache = yes
verbose = yes
EOF
(cd proj && run 30 "$DM" basic && echo "$RC" >rc && printf '%s\n' "$OUT" >out)
is "$(cat proj/rc)" 1 "distmgr.conf: its workers run the tests"
like "$(cat proj/out)" "[conf-1] $X//id=conf --" "distmgr.conf: its tx is used"
(cd proj && run 30 "$DM" --no-config -j 1 basic && printf '%s\n' "$OUT" >out)
unlike "$(cat proj/out)" "conf-1" "--no-config: the file is not read"
echo "timeout = soon" >>proj/distmgr.conf
(cd proj && run 30 "$DM" basic && echo "$RC" >rc && printf '%s\n' "$ERR" >err)
is "$(cat proj/rc)" 4 "a mistake in distmgr.conf is a usage error"
like "$(cat proj/err)" "distmgr.conf:5: --timeout wants a number" \
    "a mistake in distmgr.conf names the file and line"

done_testing
