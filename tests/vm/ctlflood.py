#!/usr/bin/env python3
"""Floods facetd's control socket with garbage and with many clients.

    ctlflood.py SOCKET

Garbage: clients send binary noise, lines longer than the server takes,
invalid JSON, requests of the wrong shape, and go away mid-line or before
their reply. Many clients: more connections than the server has slots,
each sending a request at once; those beyond the slots must be refused
with a reply, never left hanging. Every reply must be one line of JSON with
an "ok" member. Prints what it saw as JSON on one line and exits 1 when a
reply is malformed or a client got no answer.
"""

import json
import socket
import sys
import time

TIMEOUT = 20.0
SLOTS = 16          # CONTROL_CLIENTS_MAX (daemon/control.h)
CROWD = 3 * SLOTS


def connect(path):
    """A client; a full listen backlog (EAGAIN) is waited out."""
    for _ in range(200):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            time.sleep(0.05)
    raise OSError(f"{path}: the listen backlog stayed full for 10 s")


def read_lines(s, n):
    """Up to n reply lines; fewer when the server closes."""
    buf = b""
    while buf.count(b"\n") < n:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n")[:buf.count(b"\n")]


def check(line, seen):
    try:
        reply = json.loads(line)
    except ValueError:
        seen["malformed"].append(line[:200].decode(errors="replace"))
        return None
    if not isinstance(reply, dict) or "ok" not in reply:
        seen["malformed"].append(line[:200].decode(errors="replace"))
        return None
    key = "ok" if reply["ok"] else "refused"
    seen[key] += 1
    if not reply["ok"]:
        seen["errors"].add(str(reply.get("error", ""))[:60])
    return reply


def garbage(path, seen):
    # each entry: the bytes sent, and the replies expected before closing
    x, noise = 1, bytearray()
    for _ in range(3000):
        x = (x * 1103515245 + 12345) % 2**31
        noise.append((x >> 16) & 0xff)
    noise = bytes(noise).replace(b"\n", b" ")
    cases = [
        (noise + b"\n", 1),
        (b"x" * 5000 + b"\n", 1),                  # longer than a line may be
        (b"{" * 2000 + b"\n", 1),                  # deep nesting
        (b"[1, 2, 3]\n", 1),
        (b"{\"cmd\": 5}\n", 1),
        (b"{\"cmd\": \"stats\", \"x\": 1}\n", 1),
        (b"{\"cmd\": \"nope\"}\n", 1),
        (b"{\"cmd\": \"set\", \"key\": \"res\", \"value\": 1e999}\n", 1),
        (b"{\"cmd\": \"snapshot\", \"path\": \"\\u0000\"}\n", 1),
        (b"\xff\xfe{\"cmd\": \"stats\"}\n", 1),
        (b"\x00" * 100 + b"\n", 1),
        (b"{\"cmd\": \"stats\"}\n" * 50, 50),       # pipelined, read at the end
    ]
    for data, n in cases:
        s = connect(path)
        s.sendall(data)
        for line in read_lines(s, n):
            check(line, seen)
        s.close()
    # clients that go away mid-line, or right after a request
    for data in (noise[:700], b"{\"cmd\": \"st", b"{\"cmd\": \"stats\"}\n"):
        for _ in range(5):
            s = connect(path)
            s.sendall(data)
            s.close()


def crowd(path, seen):
    clients = []
    for _ in range(CROWD):
        try:
            clients.append(connect(path))
        except OSError as e:  # the listen backlog may be full for a moment
            seen["connect_failed"] += 1
            seen["errors"].add(str(e)[:60])
    for s in clients:
        try:
            s.sendall(b"{\"cmd\": \"stats\"}\n")
        except OSError:
            pass  # refused and closed already
    for s in clients:
        lines = read_lines(s, 1)
        if not lines:
            seen["unanswered"] += 1
        for line in lines:
            check(line, seen)
        s.close()


def main():
    path = sys.argv[1]
    seen = {"ok": 0, "refused": 0, "unanswered": 0, "connect_failed": 0,
            "malformed": [], "errors": set()}
    t0 = time.monotonic()
    garbage(path, seen)
    crowd(path, seen)
    seen["errors"] = sorted(seen["errors"])
    seen["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(seen))
    bad = seen["malformed"] or seen["unanswered"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
