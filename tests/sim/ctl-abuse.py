#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Abusive control-socket clients for test-control-abuse.sh. Each command
prints one line per outcome, "OUTCOME detail", for the test to count.

  ctl-abuse.py garbage SOCK          malformed, empty, oversized packets, one connection each
  ctl-abuse.py flood SOCK N MAX CTL...  N clients at once that send nothing, MAX of them
                                        served; CTL (a vtpmd-ctl command) runs while they are held
  ctl-abuse.py noread SOCK             a request whose reply is never read
"""
import errno
import json
import os
import select
import socket
import subprocess
import sys
import time


def connect(path):
    """A blocking connect, like vtpmd-ctl's: a full listen backlog makes it
    wait for vtpmd to accept, not fail."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    return s


def read_reply(s, timeout):
    """The next packet as text: ("reply", text), ("eof", ""), ("timeout", "").
    A reset is the kernel reporting that vtpmd closed with input of ours
    unread: what it sent before is still queued, so read on once."""
    deadline = time.monotonic() + timeout
    resets = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return ("timeout", "")
        r, _, _ = select.select([s], [], [], left)
        if not r:
            return ("timeout", "")
        try:
            data = s.recv(70000)
        except ConnectionResetError:
            resets += 1
            if resets > 1:
                return ("reset", "")
            continue
        if not data:
            return ("eof", "")
        return ("reply", data.decode("utf-8", "replace"))


def error_of(text):
    try:
        o = json.loads(text)
        return "errno=%s error=%s" % (o.get("errno"), o.get("error"))
    except ValueError:
        return "unparsable reply %r" % text[:80]


def garbage(path):
    cases = [
        ("binary", b"\x00\xff\xfegarbage\x01"),
        ("empty", b""),
        ("not-json", b"{op: status"),
        ("not-an-object", b"[1, 2, 3]"),
        ("unknown-op", b'{"op": "format-the-disk"}'),
        ("wrong-type", b'{"op": 7}'),
        ("deep-nesting", b'{"op": "status", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        ("over-16KiB", b'{"op": "status", "pad": "' + b"x" * 20000 + b'"}'),
        ("200KiB", b"x" * 200000),
        ("1MiB", b"x" * (1 << 20)),
    ]
    for name, payload in cases:
        s = connect(path)
        try:
            s.send(payload)
        except OSError as e:
            print("send-failed %s %s" % (name, errno.errorcode.get(e.errno, e.errno)))
            s.close()
            continue
        kind, text = read_reply(s, 10)
        print("%s %s %s" % (kind, name, error_of(text) if kind == "reply" else ""))
        s.close()


def flood(path, n, most, ctl):
    """n clients at once, none sending; vtpmd serves at most `most`. Waits
    (deadline 30 s) until all but `most` have been turned away, then runs
    ctl, then waits (deadline 60 s) for the held ones' idle goodbye."""
    outcomes = {}

    def count(what):
        outcomes[what] = outcomes.get(what, 0) + 1

    pending = []
    for _ in range(n):
        try:
            pending.append(connect(path))
        except OSError as e:
            count("connect-failed-" + errno.errorcode.get(e.errno, str(e.errno)))

    def settle(deadline, done):
        """Reads whatever arrives until done() or the deadline; classifies and drops answered clients."""
        while pending and not done() and time.monotonic() < deadline:
            r, _, _ = select.select(pending, [], [], max(0, min(1, deadline - time.monotonic())))
            for s in r:
                kind, text = read_reply(s, 5)
                if kind == "reply" and "too many control clients" in text:
                    count("refused")
                elif kind == "reply" and "idle" in text:
                    count("idle-closed")
                    if read_reply(s, 5)[0] != "eof":
                        count("no-eof-after-idle")
                else:
                    count("other-%s %s" % (kind, text[:60]))
                pending.remove(s)
                s.close()

    turned_away = lambda: outcomes.get("refused", 0) + sum(v for k, v in outcomes.items()
                                                           if k.startswith("connect-failed-"))
    settle(time.monotonic() + 30, lambda: turned_away() >= n - most)
    print("held %d" % len(pending))
    sys.stdout.flush()
    r = subprocess.run(ctl, capture_output=True, text=True)
    print("ctl-while-held exit=%d %s" % (r.returncode, r.stderr.strip().replace("\n", " | ")))
    settle(time.monotonic() + 60, lambda: False)
    for s in pending:
        count("still-open-after-60s")
        s.close()
    for k in sorted(outcomes):
        print("%s %d" % (k, outcomes[k]))


def noread(path):
    """A request whose reply it never reads; it only watches (deadline 60 s)
    for vtpmd to hang up, then reads what is queued."""
    s = connect(path)
    s.send(b'{"op": "status"}')
    t0 = time.monotonic()
    p = select.poll()
    p.register(s, select.POLLRDHUP)
    hung_up = p.poll(60000)
    kinds = []
    while hung_up:
        kind, text = read_reply(s, 5)
        kinds.append(kind if kind != "reply" else ("idle" if "idle" in text else "reply"))
        if kind != "reply":
            break
    print("noread after %.0f s: %s" % (time.monotonic() - t0, " ".join(kinds) if hung_up else "never closed"))


def main():
    cmd = sys.argv[1]
    if cmd == "garbage":
        garbage(sys.argv[2])
    elif cmd == "flood":
        flood(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
    elif cmd == "noread":
        noread(sys.argv[2])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
