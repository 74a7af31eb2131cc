#!/usr/bin/env python3
"""mgr-fake-worker.py - a scripted distworker --stdio, for the manager's
integration tests: it speaks the real protocol (distmgr-protocol(7)) but
its "suite" is a text file, one test a line:

    ID OUTCOME SECONDS [MESSAGE...]

OUTCOME is a protocol outcome (pass, fail, skip, ...) or one of the
misbehaviours the real worker never shows:
    die       the worker kills itself with SIGKILL while running the test
    diehard   like die, but only the first time any worker runs it
    hang      the worker stops reading and answering (a deadlock)
    dup       the result is sent twice
    flaky     fails the first time any worker runs it, then passes
Files under $FAKE_STATE remember "first time" across workers.
$FAKE_BAD_HASH=w1 makes worker w1 answer a wrong list hash.
"""
import hashlib
import json
import os
import select
import signal
import struct
import sys
import time

IN, OUT = 0, 1
worker_id = "w?"
suites = []          # [(path, [(id, outcome, secs, msg)])]
queue = []           # [(ask_tag, suite, [indices])]
current = None       # (tag, suite, indices, pos, started_at)
inbuf = b""


def send(obj):
    data = json.dumps(obj).encode()
    os.write(OUT, struct.pack(">I", len(data)) + data)


def first_time(key):
    d = os.environ.get("FAKE_STATE")
    if not d:
        return True
    p = os.path.join(d, key.replace("/", "_"))
    try:
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.close(fd)
        return True
    except FileExistsError:
        return False


def load_suite(path):
    tests = []
    with open(path) as f:
        for line in f:
            parts = line.split(None, 3)
            if len(parts) < 3 or line.startswith("#"):
                continue
            msg = parts[3].strip() if len(parts) > 3 else None
            tests.append((parts[0], parts[1], float(parts[2]), msg))
    return tests


def list_hash(path, tests):
    h = hashlib.sha256()
    for i, t in enumerate(tests):
        h.update(("%s\t%s:%d\n" % (t[0], "fake.c", i + 1)).encode())
    if os.environ.get("FAKE_BAD_HASH") == worker_id:
        h.update(b"x")
    return h.hexdigest()


def handle(box):
    global worker_id, current
    cmd = box.get("_command")
    tag = box.get("_ask")
    if cmd == "hello":
        worker_id = box.get("worker_id", "w?")
        send({"_answer": tag, "protocol": 1, "version": "0.0-fake",
              "abi": 1, "hostname": "fakehost", "os": "linux",
              "os_release": "6", "arch": "x86_64", "cpus": 2,
              "pid": os.getpid(), "tmpdir": "/tmp"})
    elif cmd == "load":
        path = box["path"]
        try:
            tests = load_suite(path)
        except OSError as e:
            send({"_error": tag, "_error_code": "NO_SUCH_FILE",
                  "_error_description": "%s: %s" % (path, e.strerror)})
            return
        suites.append((path, tests))
        if box.get("list", True):
            for first in range(0, len(tests), 1000):
                send({"_command": "suite_tests", "suite": path,
                      "first": first, "tests": [
                          {"id": t[0], "file": "fake.c", "line": i + 1}
                          for i, t in enumerate(tests[first:first + 1000],
                                                start=first)]})
        send({"_answer": tag, "suite": len(suites) - 1,
              "count": len(tests), "hash": list_hash(path, tests)})
    elif cmd == "run":
        queue.append((tag, box["suite"], list(box["tests"])))
    elif cmd == "ping":
        send({"_answer": tag, "time": time.monotonic()})
    elif cmd == "cancel":
        if current is not None:
            tag0, s, idx, pos, _ = current
            send({"_command": "test_result", "suite": s, "test": idx[pos],
                  "outcome": "interrupted", "duration": 0})
            send({"_answer": tag0, "ran": pos, "cancelled": True})
            current = None
        for (t, s, idx) in queue:
            send({"_answer": t, "ran": 0, "cancelled": True})
        queue.clear()
        send({"_answer": tag})
    elif cmd == "shutdown":
        send({"_answer": tag})
        sys.exit(0)
    elif tag is not None:
        send({"_error": tag, "_error_code": "UNHANDLED",
              "_error_description": "unknown command"})


def start_next():
    global current
    while current is None and queue:
        tag, s, idx = queue[0]
        if not idx:
            queue.pop(0)
            send({"_answer": tag, "ran": 0})
            continue
        queue.pop(0)
        current = (tag, s, idx, 0, None)
    if current is not None and current[4] is None:
        tag, s, idx, pos, _ = current
        send({"_command": "test_started", "suite": s, "test": idx[pos]})
        current = (tag, s, idx, pos, time.monotonic())
        tid, oc, secs, msg = suites[s][1][idx[pos]]
        if oc in ("die", "diehard") and (oc == "die" or first_time(tid)):
            os.write(2, ("fake worker %s: dying in %s\n"
                         % (worker_id, tid)).encode())
            os.kill(os.getpid(), signal.SIGKILL)
        if oc == "hang":
            while True:
                time.sleep(3600)


def finish_current():
    global current
    tag, s, idx, pos, started = current
    tid, oc, secs, msg = suites[s][1][idx[pos]]
    if oc == "flaky":
        oc = "fail" if first_time(tid) else "pass"
    if oc == "diehard":
        oc = "pass"
    r = {"_command": "test_result", "suite": s, "test": idx[pos],
         "outcome": "pass" if oc == "dup" else oc,
         "duration": time.monotonic() - started}
    if msg:
        r["message"] = msg
        send({"_command": "test_output", "suite": s, "test": idx[pos],
              "stream": "stdout", "seq": 0, "data": msg + "\n",
              "last": True})
    send(r)
    if oc == "dup":
        send(r)
    pos += 1
    if pos == len(idx):
        send({"_answer": tag, "ran": len(idx)})
        current = None
    else:
        current = (tag, s, idx, pos, None)


def main():
    global inbuf
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        start_next()
        timeout = None
        if current is not None:
            tid, oc, secs, msg = suites[current[1]][1][current[2][current[3]]]
            timeout = max(0, current[4] + secs - time.monotonic())
        r, _, _ = select.select([IN], [], [], timeout)
        if r:
            data = os.read(IN, 65536)
            if not data:
                sys.exit(0)
            inbuf += data
            while len(inbuf) >= 4:
                n = struct.unpack(">I", inbuf[:4])[0]
                if len(inbuf) < 4 + n:
                    break
                box = json.loads(inbuf[4:4 + n])
                inbuf = inbuf[4 + n:]
                handle(box)
        if current is not None and current[4] is not None:
            tid, oc, secs, msg = suites[current[1]][1][current[2][current[3]]]
            if time.monotonic() >= current[4] + secs:
                finish_current()


if __name__ == "__main__":
    main()
