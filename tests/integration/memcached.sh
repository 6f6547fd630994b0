#!/bin/sh
# memcached.sh — seacore-memcached on the real machine, driven by real
# clients: libmemcached's tools (memccapable's ASCII conformance suite,
# memccp/memccat/memcrm/memcstat), raw transcripts and garbage (mc_raw.py),
# hundreds of concurrent connections, and the checking clients of the demo
# against the server over kernel sockets. Fails if any answer is wrong or
# the server dies.
#   BUILD=dir (default build)
set -eu
BUILD=${BUILD:-build}
BIN="$BUILD/bin/seacore-memcached"
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
SERVER_PID=
fail=0

cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

say() { printf 'memcached.sh: %s\n' "$*"; }
bad() {
    say "FAILED: $*" >&2
    fail=1
}

for tool in memccapable memccp memccat memcrm memcstat nc python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        say "missing '$tool': run sudo scripts/install-deps.sh (libmemcached-tools, netcat-openbsd)" >&2
        exit 1
    fi
done
[ -x "$BIN" ] || { say "no $BIN: run make" >&2; exit 1; }

# The server on two shards, on a port the kernel picks.
"$BIN" --backend real --smp 2 --port 0 >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
PORT=
for _ in $(seq 1 100); do
    PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/server.log")
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$PORT" ]; then
    cat "$TMP/server.log" >&2
    say "the server did not start" >&2
    exit 1
fi
S="127.0.0.1:$PORT"
say "server pid $SERVER_PID on $S"

# 1. libmemcached's own conformance suite for the ASCII protocol
if timeout 120 memccapable -h 127.0.0.1 -p "$PORT" -a -t 10 >"$TMP/capable.log" 2>&1 &&
    grep -q "All tests passed" "$TMP/capable.log"; then
    say "memccapable -a: $(grep -c '\[pass\]' "$TMP/capable.log") tests passed"
else
    cat "$TMP/capable.log" >&2
    bad "memccapable -a"
fi

# 2. memccp / memccat / memcrm / memcstat
head -c 200000 /dev/urandom >"$TMP/blob.bin"
cp "$HERE/mc_raw.py" "$TMP/script.txt"
# (memccat prints a newline after each value: compare what comes before it)
same() { [ "$(wc -c <"$2")" -eq $(($(wc -c <"$1") + 1)) ] && head -c "$(wc -c <"$1")" "$2" | cmp -s "$1" -; }
if (cd "$TMP" && memccp --servers="$S" blob.bin script.txt) &&
    (cd "$TMP" && memccat --servers="$S" blob.bin) >"$TMP/blob.out" &&
    (cd "$TMP" && memccat --servers="$S" script.txt) >"$TMP/script.out" &&
    same "$TMP/blob.bin" "$TMP/blob.out" && same "$TMP/script.txt" "$TMP/script.out"; then
    say "memccp + memccat: a 200 KB binary file and a text file round-trip"
else
    bad "memccp/memccat round trip"
fi
if memcrm --servers="$S" blob.bin && ! memccat --servers="$S" blob.bin >/dev/null 2>&1; then
    say "memcrm: the file is gone"
else
    bad "memcrm"
fi
if memcstat --servers="$S" >"$TMP/stat.out" 2>&1 && grep -q "curr_items" "$TMP/stat.out" &&
    grep -q "threads: 2" "$TMP/stat.out"; then
    say "memcstat: $(grep -c ':' "$TMP/stat.out") lines"
else
    cat "$TMP/stat.out" >&2
    bad "memcstat"
fi

# 3. nc, as the README shows it
out=$(printf 'set greeting 0 0 5\r\nhello\r\nget greeting\r\n' | timeout 10 nc -q1 127.0.0.1 "$PORT" | tr -d '\r')
if [ "$out" = "$(printf 'STORED\nVALUE greeting 0 5\nhello\nEND')" ]; then
    say "nc: set and get"
else
    bad "nc transcript gave: $out"
fi

# 4. raw transcripts, garbage, over-long lines, 400 concurrent connections
if timeout 120 python3 "$HERE/mc_raw.py" 127.0.0.1 "$PORT" 400 >"$TMP/raw.log" 2>&1; then
    say "raw transcripts: $(grep -c '^ok' "$TMP/raw.log") checks"
else
    cat "$TMP/raw.log" >&2
    bad "raw transcripts"
fi

# 5. the server survived all that, and still answers
if kill -0 "$SERVER_PID" 2>/dev/null &&
    printf 'version\r\n' | timeout 10 nc -q1 127.0.0.1 "$PORT" | grep -q '^VERSION'; then
    say "the server is alive and answers"
else
    cat "$TMP/server.log" >&2
    bad "the server died or stopped answering"
fi
kill "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
# a sanitizer build reports on stderr without stopping the server
sanitizer_report() { grep -q -E 'ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error' "$1"; }
if sanitizer_report "$TMP/server.log"; then
    cat "$TMP/server.log" >&2
    bad "the sanitizer reported on the server"
fi

# 6. the demo's checking clients, over kernel sockets
if timeout 120 "$BIN" --backend real --smp 2 --port 0 --clients 8 --ops 300 >"$TMP/demo.log" 2>&1 &&
    grep -q "0 violations" "$TMP/demo.log" && ! sanitizer_report "$TMP/demo.log"; then
    say "checking clients (real world): $(grep '^requests' "$TMP/demo.log")"
else
    cat "$TMP/demo.log" >&2
    bad "the checking clients found violations (or the run failed)"
fi

[ $fail -eq 0 ] && say "all passed"
exit $fail
