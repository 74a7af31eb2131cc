#!/bin/sh
# daemon.sh - distworker --listen as an administrator meets it: the
# refusals that protect a host (no TLS beyond loopback, root without
# --user), usage errors and their exit status 4, detaching with a
# pidfile, a second daemon on the same pidfile or port, and SIGTERM.
# What managers and attackers see is test_daemon.c's.
. "$(dirname "$0")/lib.sh"

W="$BIN/distworker"
D="$T_TMP/d"
mkdir -p "$D"
# The daemon may run as nobody: it must reach its directories.
chmod 755 "$T_TMP"
chmod 777 "$D"
export TMPDIR="$D"
AS=""
[ "$(id -u)" = 0 ] && AS="--user nobody"

# ---- usage -----------------------------------------------------------------

run 10 "$W" --help
like "$OUT" "--listen A:P      serve managers that connect to A:P" "--help shows --listen"
like "$OUT" "--grace S" "--help shows --grace"

# shellcheck disable=SC2086
run 10 "$W" --listen 0.0.0.0:7700 --foreground $AS
is "$RC" 4 "a non-loopback address without TLS is a usage error"
like "$ERR" "refusing to listen on 0.0.0.0:7700 without TLS: beyond loopback, managers must be authenticated" "and says why"

# shellcheck disable=SC2086
run 10 "$W" --listen :7700 --foreground $AS
is "$RC" 4 "every address (:PORT) without TLS is refused too"

# shellcheck disable=SC2086
run 10 "$W" --listen 127.0.0.1 --foreground $AS
is "$RC" 4 "an address without a port is a usage error"
like "$ERR" "--listen wants ADDR:PORT, not '127.0.0.1'" "and names the address"

run 10 "$W" --listen 127.0.0.1:0 --tls-cert x.pem
is "$RC" 4 "TLS with only a certificate is a usage error"
like "$ERR" "TLS needs all of --tls-cert, --tls-key and --tls-ca" "and says what it needs"

run 10 "$W" --stdio --jobs 2
is "$RC" 4 "--jobs without --listen is a usage error"
like "$ERR" "--jobs is an option of --listen" "and says whose option it is"

run 10 "$W" --listen 127.0.0.1:0 --cache-size lots
is "$RC" 4 "a bad --cache-size is a usage error"

run 10 "$W" --listen 127.0.0.1:0 --stdio
is "$RC" 4 "--listen and --stdio exclude each other"

if [ "$(id -u)" = 0 ]; then
	run 10 "$W" --listen 127.0.0.1:0 --foreground
	is "$RC" 4 "root without --user is refused"
	like "$ERR" "refusing to run as root: say --user NAME" "and says what to do"
	run 10 "$W" --listen 127.0.0.1:0 --foreground --user no-such-user-here
	is "$RC" 4 "an unknown --user is a usage error"
	like "$ERR" "--user: no user 'no-such-user-here'" "and names it"
	run 10 "$W" --listen 127.0.0.1:0 --foreground --user root
	is "$RC" 4 "--user root is refused"
fi

# shellcheck disable=SC2086
run 10 "$W" --listen 127.0.0.1:0 --foreground $AS --tls-cert /nonexistent/d.pem --tls-key /nonexistent/d.key --tls-ca /nonexistent/ca.pem
is "$RC" 4 "unusable TLS files are a usage error"
like "$ERR" "/nonexistent/d.pem" "and the file is named"

# ---- a detached daemon ------------------------------------------------------

C="$T_TMP/certs"
sh "$DM_TOP/contrib/make-certs.sh" "$C" ca
sh "$DM_TOP/contrib/make-certs.sh" "$C" server srv
TLS="--tls-cert $C/srv.pem --tls-key $C/srv.key --tls-ca $C/ca.pem"

# shellcheck disable=SC2086
run 10 "$W" --listen 127.0.0.1:0 $AS $TLS -j 2 --log "$D/log" --pidfile "$D/pid" --cache-dir "$D/cache"
is "$RC" 0 "the daemon detaches and the command exits 0 once it listens"
like "$(cat "$D/log")" "listening on 127.0.0.1:" "the log says where it listens"
like "$(cat "$D/log")" "2 slots, TLS with client certificates" "and how"
pid=$(cat "$D/pid" 2>/dev/null)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
	ok "the pidfile names the running daemon"
else
	not_ok "the pidfile names the running daemon"
fi
is "$(ps -o tty= -p "$pid" | tr -d ' ')" "?" "it has no controlling terminal"
if [ "$(id -u)" = 0 ]; then
	is "$(ps -o user= -p "$pid" | tr -d ' ')" "nobody" "started as root, it runs as --user"
fi
port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$D/log" | head -n 1)

# shellcheck disable=SC2086
run 10 "$W" --listen 127.0.0.1:0 $AS $TLS --log "$D/log2" --pidfile "$D/pid" --cache-dir "$D/cache"
is "$RC" 3 "a second daemon on the same pidfile does not start"
like "$ERR" "is locked: another distworker runs with this pidfile" "and says why"

# shellcheck disable=SC2086
run 10 "$W" --listen "127.0.0.1:$port" $AS $TLS --log "$D/log3" --cache-dir "$D/cache"
is "$RC" 3 "a daemon whose port is taken does not start"
like "$ERR" "cannot listen on 127.0.0.1:$port: Address already in use" "and says why"

kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
if kill -0 "$pid" 2>/dev/null; then
	not_ok "SIGTERM stops the daemon"
	kill -KILL "$pid"
else
	ok "SIGTERM stops the daemon"
fi
like "$(cat "$D/log")" "signal 15: stopping" "the log says it stopped on SIGTERM"
if [ -e "$D/pid" ]; then
	not_ok "its pidfile is removed"
else
	ok "its pidfile is removed"
fi
is "$(ls "$D" | grep -c distworkerd)" 0 "its sessions' directory is removed"

done_testing
