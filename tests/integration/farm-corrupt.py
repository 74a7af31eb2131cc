#!/usr/bin/env python3
"""farm-corrupt.py CMD... - runs CMD (a worker speaking on its stdin and
stdout) and relays the protocol both ways, but flips one byte in the
first blob chunk it passes on, keeping the frame well formed: a transfer
corrupted on the way, which the worker must refuse by its hash.

Used as --tx exec='farm-corrupt.py distworker --stdio'.
"""
import base64
import json
import os
import select
import struct
import subprocess
import sys


def frames(buf):
    """Whole frames off the front of buf: (list, rest)."""
    out = []
    while len(buf) >= 4:
        n = struct.unpack(">I", buf[:4])[0]
        if len(buf) < 4 + n:
            break
        out.append(buf[4:4 + n])
        buf = buf[4 + n:]
    return out, buf


def main():
    child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, bufsize=0)
    down, up = b"", b""
    flipped = False
    fin, cout = 0, child.stdout.fileno()
    while True:
        r, _, _ = select.select([cout] + ([fin] if fin >= 0 else []), [], [])
        if fin >= 0 and fin in r:
            data = os.read(fin, 1 << 16)
            if not data:
                child.stdin.close()
                fin = -1
                continue
            down += data
            fs, down = frames(down)
            for f in fs:
                if not flipped and b'"blob"' in f:
                    box = json.loads(f)
                    raw = bytearray(base64.b64decode(box["data"]))
                    if raw:
                        raw[len(raw) // 2] ^= 0x20
                        box["data"] = base64.b64encode(bytes(raw)).decode()
                        flipped = True
                        f = json.dumps(box).encode()
                child.stdin.write(struct.pack(">I", len(f)) + f)
        if cout in r:
            data = os.read(cout, 1 << 16)
            if not data:
                break
            os.write(1, data)
    child.wait()


if __name__ == "__main__":
    main()
