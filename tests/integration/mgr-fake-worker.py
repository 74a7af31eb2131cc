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

Shipping, as a far worker does it: have, blob (checked against its hash
and size), ship (installed under $FAKE_SESSION, a temporary directory by
default) and load by sha256 and name. $FAKE_CACHE=DIR keeps blobs there
across runs (hello then says cache: true); without it a worker has none.
$FAKE_HELLO_DELAY=S answers hello S seconds late (a daemon with no free
slot); $FAKE_HELLO_DELAY_FOR=w2 only for that worker. $FAKE_LOG=FILE
appends each command received, with the worker id.
"""
import base64
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
cache_dir = os.environ.get("FAKE_CACHE")
session = os.environ.get("FAKE_SESSION")
blobs = {}           # sha256 -> bytes (no cache dir), or "" when corrupt
corrupt = {}         # announced sha256 -> the hash the bytes had
streams = {}         # sha256 -> [size, bytearray, next seq]
hello_at = None      # (tag, when) of a late hello
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


def fail(tag, code, text):
    send({"_error": tag, "_error_code": code, "_error_description": text})


def blob_path(sha):
    return os.path.join(cache_dir, sha) if cache_dir else None


def have_blob(sha):
    if sha in corrupt:
        return False
    if cache_dir:
        return os.path.exists(blob_path(sha))
    return sha in blobs


def blob_bytes(sha):
    if cache_dir:
        with open(blob_path(sha), "rb") as f:
            return f.read()
    return blobs[sha]


def on_blob(box):
    sha = box["stream"]
    seq = box["seq"]
    if seq == 0:
        streams[sha] = [box.get("size", -1), bytearray(), 0]
    st = streams.get(sha)
    if st is None or st[2] != seq:
        return
    st[1] += base64.b64decode(box["data"])
    st[2] += 1
    if not box.get("last"):
        return
    del streams[sha]
    got = hashlib.sha256(bytes(st[1])).hexdigest()
    if got != sha or len(st[1]) != st[0]:
        corrupt[sha] = got
        return
    corrupt.pop(sha, None)
    if cache_dir:
        tmp = blob_path(sha) + ".tmp%d" % os.getpid()
        with open(tmp, "wb") as f:
            f.write(st[1])
        os.rename(tmp, blob_path(sha))
    else:
        blobs[sha] = bytes(st[1])


def need(tag, sha):
    """An error for a blob that is not usable, or None."""
    if sha in corrupt:
        fail(tag, "BLOB_CORRUPT", "blob %s arrived as %s" % (sha, corrupt[sha]))
        return True
    if not have_blob(sha):
        fail(tag, "NEED_BLOB", "no blob %s" % sha)
        return True
    return False


def bad_path(p):
    return p.startswith("/") or any(c in ("", ".", "..") for c in p.split("/"))


def on_ship(tag, box):
    root = box["root"]
    files = box["files"]
    if bad_path(root) or any(bad_path(f["path"]) for f in files):
        fail(tag, "BAD_PATH", "a path escapes the session")
        return
    n = 0
    total = 0
    for f in files:
        if need(tag, f["sha256"]):
            return
        dest = os.path.join(session, root, f["path"])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        data = blob_bytes(f["sha256"])
        with open(dest, "wb") as out:
            out.write(data)
        os.chmod(dest, f["mode"])
        n += 1
        total += len(data)
    send({"_answer": tag, "files": n, "bytes": total})


def load(tag, box, path):
    """Loads the fake suite at path; lists name it as box["path"]."""
    try:
        tests = load_suite(path)
    except OSError as e:
        send({"_error": tag, "_error_code": "NO_SUCH_FILE",
              "_error_description": "%s: %s" % (path, e.strerror)})
        return
    suites.append((path, tests))
    if box.get("list", True):
        for first in range(0, len(tests), 1000):
            send({"_command": "suite_tests", "suite": box["path"],
                  "first": first, "tests": [
                      {"id": t[0], "file": "fake.c", "line": i + 1}
                      for i, t in enumerate(tests[first:first + 1000],
                                            start=first)]})
    send({"_answer": tag, "suite": len(suites) - 1,
          "count": len(tests), "hash": list_hash(path, tests)})


def answer_hello(tag):
    send({"_answer": tag, "protocol": 1, "version": "0.0-fake",
          "abi": 1, "hostname": "fakehost-" + worker_id, "os": "linux",
          "os_release": "6", "arch": "x86_64", "cpus": 2,
          "pid": os.getpid(), "tmpdir": "/tmp", "session": session,
          "cache": cache_dir is not None})


def log_command(cmd):
    p = os.environ.get("FAKE_LOG")
    if p and cmd:
        with open(p, "a") as f:
            f.write("%s %s\n" % (worker_id, cmd))


def handle(box):
    global worker_id, current, hello_at
    cmd = box.get("_command")
    tag = box.get("_ask")
    if cmd == "hello":
        worker_id = box.get("worker_id", "w?")
    log_command(cmd)
    if cmd == "hello":
        delay = float(os.environ.get("FAKE_HELLO_DELAY", "0"))
        only = os.environ.get("FAKE_HELLO_DELAY_FOR")
        if delay > 0 and (not only or only == worker_id):
            hello_at = (tag, time.monotonic() + delay)
        else:
            answer_hello(tag)
    elif cmd == "have":
        send({"_answer": tag, "missing": [b["sha256"] for b in box["blobs"]
                                          if not have_blob(b["sha256"])]})
    elif cmd == "blob":
        on_blob(box)
    elif cmd == "ship":
        on_ship(tag, box)
    elif cmd == "load" and "sha256" in box:
        if need(tag, box["sha256"]):
            return
        path = os.path.join(session, box["name"])
        with open(path, "wb") as f:
            f.write(blob_bytes(box["sha256"]))
        box["path"] = box["name"]
        load(tag, box, path)
    elif cmd == "load":
        load(tag, box, box["path"])
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
    global inbuf, session, hello_at
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not session:
        import tempfile
        session = tempfile.mkdtemp(prefix="fake-session.")
    while True:
        if hello_at is not None and time.monotonic() >= hello_at[1]:
            answer_hello(hello_at[0])
            hello_at = None
        start_next()
        timeout = None if hello_at is None else \
            max(0, hello_at[1] - time.monotonic())
        if current is not None:
            tid, oc, secs, msg = suites[current[1]][1][current[2][current[3]]]
            t = max(0, current[4] + secs - time.monotonic())
            timeout = t if timeout is None else min(timeout, t)
        r, _, _ = select.select([IN], [], [], timeout)
        if r:
            data = os.read(IN, 65536)
            if not data:
                sys.exit(0)
            inbuf += data
            while len(inbuf) >= 4:
                n = struct.unpack(">I", inbuf[:4])[0]
                if n == 0 or n > (1 << 20):
                    sys.exit(3)     # a broken frame: as the real one
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
