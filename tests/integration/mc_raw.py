#!/usr/bin/env python3
"""mc_raw.py HOST PORT — raw protocol transcripts against a memcached server.

Each check sends exact bytes and compares the exact bytes that come back,
the way a client that is not libmemcached would see the server: pipelined
requests in one write, a value larger than any socket buffer, a value too
large (refused, its bytes swallowed), bad data chunks, garbage, an
over-long line (answered, then the connection closes while another one
carries on), noreply, multi-key gets spread over every shard, and many
connections at once. Exits 1 on the first difference, printing what was
sent, what came back and what was expected.
"""
import socket
import sys
import threading

HOST, PORT = sys.argv[1], int(sys.argv[2])
failures = 0


def conn():
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def check(name, sock, send, expect):
    global failures
    sock.sendall(send)
    got = read_exact(sock, len(expect))
    if got != expect:
        failures += 1
        print(f"FAIL {name}\n  sent     {send[:200]!r}\n  got      {got[:300]!r}\n"
              f"  expected {expect[:300]!r}")
        return False
    print(f"ok   {name}")
    return True


def closed(sock):
    try:
        sock.settimeout(5)
        return sock.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return True


s = conn()
check("flush_all", s, b"flush_all\r\n", b"OK\r\n")
check("set/get", s, b"set a 1 0 3\r\nabc\r\nget a\r\n", b"STORED\r\nVALUE a 1 3\r\nabc\r\nEND\r\n")

# Pipelined: many requests in one write, over keys of every shard.
keys = [f"key{i}" for i in range(40)]
req = b"".join(f"set {k} {i} 0 {len(k)}\r\n{k}\r\n".encode() for i, k in enumerate(keys))
req += ("get " + " ".join(keys) + " missing\r\n").encode()
exp = b"STORED\r\n" * len(keys)
exp += b"".join(f"VALUE {k} {i} {len(k)}\r\n{k}\r\n".encode() for i, k in enumerate(keys))
exp += b"END\r\n"
check("pipelined sets, multi-get in request order", s, req, exp)

check("add/replace/append/prepend", s,
      b"add a 0 0 1\r\nx\r\nreplace a 2 0 1\r\ny\r\nappend a 0 0 2\r\nzz\r\n"
      b"prepend a 0 0 1\r\n<\r\nget a\r\n",
      b"NOT_STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\nVALUE a 2 4\r\n<yzz\r\nEND\r\n")
check("incr/decr", s, b"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\nincr a 1\r\n",
      b"STORED\r\n15\r\n0\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n")
check("delete/touch", s, b"delete n\r\ndelete n\r\ntouch a 100\r\ntouch n 1\r\n",
      b"DELETED\r\nNOT_FOUND\r\nTOUCHED\r\nNOT_FOUND\r\n")
check("noreply", s, b"set q 0 0 1 noreply\r\nQ\r\ndelete a noreply\r\nget q a\r\n",
      b"VALUE q 0 1\r\nQ\r\nEND\r\n")

# cas: the unique from gets, then a stale one
s.sendall(b"gets q\r\n")
line = b""
while not line.endswith(b"\r\n"):
    line += s.recv(1)
cas = int(line.split()[4])
read_exact(s, len(b"Q\r\nEND\r\n"))
check("cas", s, f"cas q 0 0 1 {cas}\r\nR\r\ncas q 0 0 1 {cas}\r\nS\r\n".encode(),
      b"STORED\r\nEXISTS\r\n")

# A value larger than the connection's buffers, both ways.
big = bytes((i * 7) % 251 for i in range(300000)).replace(b"\r", b"r")
check("300 KB value", s, b"set big 0 0 %d\r\n" % len(big) + big + b"\r\nget big\r\n",
      b"STORED\r\nVALUE big 0 %d\r\n" % len(big) + big + b"\r\nEND\r\n")

# Too large (over -I 1m): refused, its block swallowed; the connection goes on.
huge = b"h" * (2 * 1024 * 1024)
check("value over the item size", s, b"set huge 0 0 %d\r\n" % len(huge) + huge + b"\r\nget huge\r\n",
      b"SERVER_ERROR object too large for cache\r\nEND\r\n")

# Protocol errors: answered, and the connection goes on.
# (the block is its 3 bytes and 2 more: "de"; the "\r\n" after it is an empty line)
check("bad data chunk", s, b"set k 0 0 3\r\nabcde\r\nget k\r\n",
      b"CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n")
check("garbage", s, b"hello there\r\n\r\nGET a\r\n", b"ERROR\r\nERROR\r\nERROR\r\n")
check("bad numbers", s, b"set k x 0 1\r\n", b"CLIENT_ERROR bad command line format\r\n")
check("key too long", s, b"get " + b"k" * 251 + b"\r\n", b"CLIENT_ERROR bad command line format\r\n")
check("still fine", s, b"version\r\n", b"VERSION 1.6.0-seacore\r\n")

# An over-long line: answered, then closed; another connection is untouched.
other = conn()
check("other connection, before", other, b"set other 0 0 2\r\nok\r\n", b"STORED\r\n")
bad = conn()
check("line too long", bad, b"x" * 5000, b"CLIENT_ERROR line too long\r\n")
if not closed(bad):
    failures += 1
    print("FAIL the connection with an over-long line stays open")
else:
    print("ok   ... and that connection is closed")
check("other connection, after", other, b"get other\r\n", b"VALUE other 0 2\r\nok\r\nEND\r\n")

# quit closes
q = conn()
q.sendall(b"quit\r\n")
print("ok   quit closes" if closed(q) else "FAIL quit did not close")
failures += 0 if closed(q) else 1

# stats shards: every shard answers
s.sendall(b"stats shards\r\n")
data = b""
while not data.endswith(b"END\r\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
shards = {l.split()[1].split(b":")[0] for l in data.split(b"\r\n") if l.startswith(b"STAT shard")}
print(f"ok   stats shards: {len(shards)} shards" if len(shards) >= 2 else "FAIL stats shards")
failures += 0 if len(shards) >= 2 else 1

# Many connections at once, each with its own keys.
N = int(sys.argv[3]) if len(sys.argv) > 3 else 400
errors = []


def worker(i, socks):
    try:
        c = socks[i]
        k = f"conn{i}"
        c.sendall(f"set {k} {i} 0 {len(k)}\r\n{k}\r\nget {k}\r\n".encode())
        want = f"STORED\r\nVALUE {k} {i} {len(k)}\r\n{k}\r\nEND\r\n".encode()
        got = read_exact(c, len(want))
        if got != want:
            errors.append((i, got))
    except OSError as e:
        errors.append((i, str(e)))


socks = [conn() for _ in range(N)]
threads = [threading.Thread(target=worker, args=(i, socks)) for i in range(N)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for c in socks:
    c.close()
if errors:
    failures += 1
    print(f"FAIL {len(errors)} of {N} concurrent connections: {errors[:3]}")
else:
    print(f"ok   {N} concurrent connections")

s.close()
other.close()
sys.exit(1 if failures else 0)
