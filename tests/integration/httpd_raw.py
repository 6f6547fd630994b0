#!/usr/bin/env python3
"""httpd_raw.py — what curl cannot send: raw requests against seacore-httpd.

    httpd_raw.py PORT limits     malformed and over-limit requests get 400/413/414/431/501/505
    httpd_raw.py PORT pipeline   many requests in one write, every reply back in order
    httpd_raw.py PORT slowloris TIMEOUT_MS
                                 a client trickling a byte per 100 ms and an idle one are
                                 closed after the header timeout, while others are served
    httpd_raw.py PORT garbage    random bytes on many connections; the server still answers

Every check prints one line; the exit code is the number of failures.
Only 127.0.0.1 is contacted, and every loop is bounded.
"""
import random
import socket
import sys
import threading
import time

PORT = int(sys.argv[1])
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


def connect(timeout=10):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    s.settimeout(timeout)
    return s


def exchange(data, timeout=10):
    """Send data, read until the server closes (or the timeout): the bytes read."""
    s = connect(timeout)
    try:
        s.sendall(data)
    except OSError:
        pass  # the server may answer and close before we finish sending
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return out


def status_of(reply):
    if not reply.startswith(b"HTTP/1."):
        return None
    return int(reply[9:12])


def limits():
    host = b"Host: t\r\n"
    cases = [
        ("request line over 8 KiB -> 414", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + host + b"\r\n", 414),
        ("request line of exactly 8 KiB -> served",
         b"GET /?" + b"a" * (8192 - 15) + b" HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n", 200),
        ("101 header fields -> 431",
         b"GET / HTTP/1.1\r\n" + host + b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n", 431),
        ("17 KiB of header -> 431", b"GET / HTTP/1.1\r\n" + host + b"X: " + b"v" * 17000 + b"\r\n\r\n", 431),
        ("Content-Length over 1 MiB -> 413",
         b"POST /echo HTTP/1.1\r\n" + host + b"Content-Length: 1048577\r\n\r\n", 413),
        ("chunked body over 1 MiB -> 413",
         b"POST /echo HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\n100001\r\n", 413),
        ("malformed request line -> 400", b"GET  / HTTP/1.1\r\n" + host + b"\r\n", 400),
        ("folded header -> 400", b"GET / HTTP/1.1\r\n" + host + b"X: a\r\n b\r\n\r\n", 400),
        ("no Host in 1.1 -> 400", b"GET / HTTP/1.1\r\n\r\n", 400),
        ("CL and TE together -> 400",
         b"POST /echo HTTP/1.1\r\n" + host + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("Transfer-Encoding: gzip -> 501",
         b"POST /echo HTTP/1.1\r\n" + host + b"Transfer-Encoding: gzip\r\n\r\n", 501),
        ("HTTP/2.0 -> 505", b"GET / HTTP/2.0\r\n" + host + b"\r\n", 505),
        ("Expect: other -> 417", b"GET / HTTP/1.1\r\n" + host + b"Expect: tea\r\n\r\n", 417),
        ("unknown method on / -> 405", b"BREW / HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n", 405),
    ]
    for what, req, want in cases:
        reply = exchange(req)
        got = status_of(reply)
        closes = want < 400 or want in (405,) or b"Connection: close" in reply
        check(got == want and closes, "%s (got %s)" % (what, got))
    # Expect: 100-continue: the 100 first, then the body, then the echo
    s = connect()
    s.sendall(b"POST /echo HTTP/1.1\r\n" + host + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    first = s.recv(4096)
    s.sendall(b"hello")
    rest = b""
    while not rest.endswith(b"hello"):
        b = s.recv(4096)
        if not b:
            break
        rest += b
    s.close()
    check(first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n") and rest.endswith(b"\r\n\r\nhello"),
          "Expect: 100-continue")


def pipeline():
    reqs = []
    for i in range(200):
        reqs.append(b"GET /%s HTTP/1.1\r\nHost: t\r\n\r\n" % (b"" if i % 3 else b"nope"))
    reqs.append(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd")
    reqs.append(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    reply = exchange(b"".join(reqs))
    n = reply.count(b"HTTP/1.1 ")
    check(n == len(reqs), "pipelined %d requests in one write: %d replies" % (len(reqs), n))
    order = [int(reply[i + 9:i + 12]) for i in range(len(reply)) if reply.startswith(b"HTTP/1.1 ", i)]
    want = [404 if i % 3 == 0 else 200 for i in range(200)] + [200, 200]
    check(order == want, "replies in request order")
    check(b"\r\n\r\nabcd" in reply, "the body echoed inside the pipeline")
    # the same split at random places, sent with pauses
    data = b"".join(reqs[:20]) + reqs[-1]
    s = connect()
    i = 0
    rng = random.Random(7)
    while i < len(data):
        j = min(len(data), i + rng.randint(1, 40))
        s.sendall(data[i:j])
        i = j
        if rng.random() < 0.1:
            time.sleep(0.002)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    check(out.count(b"HTTP/1.1 ") == 21, "pipelined requests split at random places")


def slowloris(timeout_ms):
    t = timeout_ms / 1000.0
    result = {}

    def trickle():
        s = connect(timeout=t * 10 + 5)
        head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"z" * 400 + b"\r\n\r\n"
        t0 = time.time()
        closed_at = None
        for b in head:  # a byte per 100 ms: 40 s for all of it, far past the timeout
            try:
                s.send(bytes([b]))
            except OSError:
                closed_at = time.time() - t0
                break
            time.sleep(0.1)
            if time.time() - t0 > t * 4 + 5:
                break
            # the server may have closed: peek without blocking
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed_at = time.time() - t0
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed_at = time.time() - t0
                break
            finally:
                s.setblocking(True)
                s.settimeout(t * 10 + 5)
        s.close()
        result["trickle"] = closed_at

    def idle():
        s = connect(timeout=t * 4 + 5)
        t0 = time.time()
        try:
            b = s.recv(1)
        except OSError:
            b = b""
        result["idle"] = time.time() - t0 if b == b"" else None
        s.close()

    threads = [threading.Thread(target=trickle), threading.Thread(target=idle)]
    for th in threads:
        th.start()
    # meanwhile, everyone else is served
    served = 0
    for i in range(20):
        r = exchange(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", timeout=5)
        served += status_of(r) == 200
        time.sleep(t / 40)
    for th in threads:
        th.join()
    check(served == 20, "others served while a slow client trickles (%d/20)" % served)
    tr = result.get("trickle")
    check(tr is not None and tr >= t * 0.9,
          "the trickling client is closed after the header timeout (%s s, timeout %.1f s)" % (tr, t))
    idl = result.get("idle")
    check(idl is not None and idl >= t * 0.9,
          "an idle connection is closed after the header timeout (%s s)" % idl)


def garbage():
    rng = random.Random(11)
    for i in range(40):
        n = rng.randint(1, 3000)
        data = bytes(rng.randrange(256) for _ in range(n))
        if i % 4 == 0:
            data = b"GET / HTTP/1.1\r\nHost: t\r\n" + data + b"\r\n\r\n"
        reply = exchange(data, timeout=3)
        st = status_of(reply)
        if reply and st is None:
            check(False, "garbage %d: a reply that is not HTTP: %r" % (i, reply[:40]))
            return
    reply = exchange(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    check(status_of(reply) == 200 and reply.endswith(b"Hello, world!\n"),
          "after 40 connections of garbage the server still answers")


cmd = sys.argv[2]
if cmd == "limits":
    limits()
elif cmd == "pipeline":
    pipeline()
elif cmd == "slowloris":
    slowloris(int(sys.argv[3]))
elif cmd == "garbage":
    garbage()
else:
    print("unknown command " + cmd)
    sys.exit(2)
sys.exit(failures)
