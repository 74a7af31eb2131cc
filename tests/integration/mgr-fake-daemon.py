#!/usr/bin/env python3
"""mgr-fake-daemon.py - a stand-in for `distworker --listen`, for the
manager's tcp= tests: it accepts connections on ADDR:PORT, optionally
over TLS (demanding a client certificate from --ca), and serves each
with a scripted worker (mgr-fake-worker.py) started for it, relaying the
bytes both ways. With --jobs N, a connection beyond N waits for a free
slot before its worker starts: its hello is answered late, as the real
daemon's is.

    mgr-fake-daemon.py --listen 127.0.0.1:PORT [--jobs N]
        [--cert F --key F --ca F] [--ready FILE]

The fake worker's environment ($FAKE_CACHE, $FAKE_STATE, ...) passes
through. --ready FILE is written once it listens.
"""
import argparse
import os
import socket
import ssl
import subprocess
import sys
import threading

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    "mgr-fake-worker.py")


def pump(src_read, dst_write, done):
    try:
        while True:
            data = src_read(65536)
            if not data:
                break
            dst_write(data)
    except (OSError, ValueError):
        pass
    done()


def serve(conn, slots):
    with slots:
        child = subprocess.Popen([sys.executable, FAKE],
                                 stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, bufsize=0)
        closed = threading.Event()

        def to_child(data):
            child.stdin.write(data)

        def to_peer(data):
            conn.sendall(data)

        def end():
            closed.set()

        a = threading.Thread(target=pump, args=(conn.recv, to_child, end),
                             daemon=True)
        b = threading.Thread(target=pump,
                             args=(child.stdout.read, to_peer, end),
                             daemon=True)
        a.start()
        b.start()
        closed.wait()
        try:
            child.kill()
        except OSError:
            pass
        child.wait()
        # shutdown, not only close: the other thread's recv holds the
        # socket, and the peer must see the end now.
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            conn.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--jobs", type=int, default=64)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--ca")
    ap.add_argument("--ready")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(a.cert, a.key)
        ctx.load_verify_locations(a.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(64)
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("ready\n")
    slots = threading.Semaphore(a.jobs)
    while True:
        conn, _ = s.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ctx is not None:
            try:
                conn = ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as e:
                sys.stderr.write("fake daemon: handshake: %s\n" % e)
                conn.close()
                continue
        threading.Thread(target=serve, args=(conn, slots),
                         daemon=True).start()


if __name__ == "__main__":
    main()
