#!/bin/sh
# farm-ssh.sh - --tx ssh= through a real OpenSSH server: sshd started here
# on a loopback port with a throwaway host key, a throwaway user key in
# its authorized_keys, and the client told through --ssh-command to use a
# generated ssh_config (that key, no known_hosts). The worker on the far
# side is the real distworker, which gets the suites by content.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mgr.sh"

SSHD=/usr/sbin/sshd
if [ ! -x "$SSHD" ] || ! command -v ssh >/dev/null 2>&1 ||
    ! command -v ssh-keygen >/dev/null 2>&1; then
	echo "ok 1 - # SKIP no OpenSSH server here (scripts/ensure-deps.sh installs it)"
	exit 0
fi
DM="$BIN/distmgr"
cd "$T_TMP" || exit 1

# ---- the server ------------------------------------------------------------
S=$T_TMP/sshd
mkdir -p "$S"
chmod 700 "$S"
ssh-keygen -q -t ed25519 -N '' -f "$S/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$S/user_key"
cp "$S/user_key.pub" "$S/authorized_keys"
# A free port: bind one, let it go, hand it to sshd.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# sshd wants its privilege separation directory.
[ -d /run/sshd ] || mkdir -p /run/sshd 2>/dev/null
cat >"$S/sshd_config" <<EOF
ListenAddress 127.0.0.1:$PORT
HostKey $S/host_key
AuthorizedKeysFile $S/authorized_keys
PidFile $S/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding no
X11Forwarding no
LogLevel ERROR
SetEnv ASAN_OPTIONS=$ASAN_OPTIONS
EOF
"$SSHD" -D -e -f "$S/sshd_config" 2>"$S/sshd.log" &
SSHD_PID=$!
trap 'kill $SSHD_PID 2>/dev/null; rm -rf "$T_TMP"' EXIT
cat >"$S/ssh_config" <<EOF
Host *
	IdentityFile $S/user_key
	IdentitiesOnly yes
	StrictHostKeyChecking no
	UserKnownHostsFile /dev/null
	LogLevel ERROR
EOF
# Until it listens.
i=0
while ! ssh -F "$S/ssh_config" -o BatchMode=yes -p "$PORT" 127.0.0.1 true \
    2>/dev/null && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
if [ $i -ge 50 ]; then
	not_ok "sshd started on 127.0.0.1:$PORT"
	sed 's/^/#   /' "$S/sshd.log"
	done_testing
	exit 1
fi
ok "sshd started on 127.0.0.1:$PORT"

SSH="ssh -F $S/ssh_config"
TX="2*ssh=127.0.0.1:$PORT//worker=$BIN/distworker"
"$DM" --no-cache --list -q --no-config -j 1 "$SUITES/mgr_mixed.so" >mixed.ids

# ---- a run through it ------------------------------------------------------
run 60 "$DM" --no-cache -v --ssh-command "$SSH" --tx "$TX" \
    "$SUITES/mgr_mixed.so"
is "$RC" 1 "ssh=: failures exit 1"
is "$(closing "$OUT")" \
    "distmgr: 10 passed, 1 failed, 2 crashed, 1 timed out, 1 skipped, 1 xfailed" \
    "ssh=: every outcome, as with local workers"
each_once "$OUT" mixed.ids "ssh=: each test has one result line"
is "$(printf '%s\n' "$OUT" | grep -c "^\[w[01]\] ssh=127.0.0.1:$PORT//worker=")" 2 \
    "ssh=: a node line per worker shows the spec"
like "$OUT" "shipped " "ssh=: the suite is sent by content"

# Beside local workers; the second run of the same suite sends nothing
# when the far side keeps a cache.
run 60 "$DM" --no-cache -v -j 1 --ssh-command "$SSH" --tx "$TX" \
    "$SUITES/mgr_mixed.so"
each_once "$OUT" mixed.ids "ssh= beside popen: each test has one result line"
like "$OUT" "[w0] popen -- " "ssh= beside popen: the local worker is there"

# ---- a host that will not let us in ----------------------------------------
run 60 "$DM" --no-cache -v -j 1 \
    --ssh-command "ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null" \
    --tx "ssh=nobody@127.0.0.1:$PORT//worker=$BIN/distworker" \
    "$SUITES/mgr_mixed.so"
like "$OUT$ERR" "w1 (ssh=nobody@127.0.0.1:$PORT//worker=$BIN/distworker) did not come up" \
    "ssh= refused: the host is reported"
like "$OUT$ERR" "Permission denied" "ssh= refused: with ssh's own words"
each_once "$OUT" mixed.ids "ssh= refused: the local worker runs every test"

done_testing
