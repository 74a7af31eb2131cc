#!/usr/bin/env python3
"""cdp.py - drive headless Chromium through its DevTools protocol, with
nothing but the Python standard library (a small WebSocket client).

Used by tests/integration/web-browser.sh to open distmgr's dashboard in a
real browser, wait until the page shows what a person would check, and
keep screenshots.

    cdp.py PORT open URL
    cdp.py PORT wait JS_EXPR SECONDS      # until the expression is true
    cdp.py PORT eval JS_EXPR              # prints the value as JSON
    cdp.py PORT shot FILE.png

PORT is Chromium's --remote-debugging-port. Each call attaches to the
first page, does one thing and detaches. Every wait is bounded: a page
that never shows the thing fails the test, it never hangs it.
"""
import base64
import json
import os
import socket
import struct
import sys
import time
import urllib.request


class WebSocket:
    """Just enough of RFC 6455 for DevTools: text frames, client masking,
    fragmented and large messages, ping/pong, close."""

    def __init__(self, url, timeout=30):
        assert url.startswith("ws://"), url
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key))
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise IOError("websocket: connection closed in handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise IOError("websocket: handshake refused: %r" % head[:200])

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise IOError("websocket: connection closed")
            buf += chunk
        return buf

    def _send_frame(self, opcode, payload):
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send(self, text):
        self._send_frame(0x1, text.encode())

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._recv_exact(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv_exact(8))[0]
            mask = self._recv_exact(4) if b1 & 0x80 else None
            data = self._recv_exact(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if opcode == 0x9:
                self._send_frame(0xA, data)
                continue
            if opcode == 0x8:
                raise IOError("websocket: closed by the browser")
            if opcode in (0x0, 0x1, 0x2):
                message += data
                if b0 & 0x80:
                    return message.decode()

    def close(self):
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class Page:
    def __init__(self, port):
        with urllib.request.urlopen("http://127.0.0.1:%s/json/list" % port,
                                    timeout=10) as f:
            targets = json.load(f)
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            raise IOError("no page target in %r" % targets)
        self.ws = WebSocket(pages[0]["webSocketDebuggerUrl"])
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method,
                                 "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise IOError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise IOError("page script failed: %s" %
                          json.dumps(r["exceptionDetails"])[:500])
        return r.get("result", {}).get("value")


def main(argv):
    port, what = argv[1], argv[2]
    page = Page(port)
    try:
        if what == "open":
            page.call("Page.enable")
            page.call("Page.navigate", url=argv[3])
        elif what == "wait":
            expr, seconds = argv[3], float(argv[4])
            end = time.monotonic() + seconds
            while not page.eval("!!(%s)" % expr):
                if time.monotonic() > end:
                    state = page.eval("document.body ? "
                                      "document.body.innerText.slice(0, 1500)"
                                      " : '(no body)'")
                    print("cdp: still not true after %.0f s: %s\n"
                          "cdp: the page shows:\n%s" % (seconds, expr, state))
                    return 1
                time.sleep(0.1)
        elif what == "eval":
            print(json.dumps(page.eval(argv[3])))
        elif what == "shot":
            page.call("Emulation.setDeviceMetricsOverride", width=1280,
                      height=900, deviceScaleFactor=1, mobile=False)
            r = page.call("Page.captureScreenshot", format="png")
            with open(argv[3], "wb") as f:
                f.write(base64.b64decode(r["data"]))
        else:
            print("cdp: unknown command %s" % what)
            return 4
    finally:
        page.ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
