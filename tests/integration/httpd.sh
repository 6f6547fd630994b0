#!/bin/sh
# httpd.sh — seacore-httpd on the real machine (--smp 2, posix stack) against
# real clients: curl (GET, HEAD, keep-alive over several URLs, static files
# compared byte for byte with cmp, 301/403/404/405, chunked replies, bodies
# echoed), raw requests from httpd_raw.py (400/413/414/417/431/501/505,
# pipelining, garbage, a slow-loris client and an idle one closed by the
# header timeout while others are served), wrk with 2000 connections, then a
# clean stop on SIGTERM. Only 127.0.0.1 is used; every step is bounded.
#   BUILD=dir (default build)
#
# $C (the curl command) and $U (the base URL) are split into words on purpose:
# shellcheck disable=SC2086
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=$BUILD/bin/seacore-httpd
[ -x "$BIN" ] || { echo "httpd.sh: $BIN is not built" >&2; exit 1; }

missing=""
for t in curl wrk python3 cmp; do
    command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "httpd.sh: missing:$missing; running scripts/install-deps.sh" >&2
        "$ROOT/scripts/install-deps.sh" || exit 1
    else
        echo "httpd.sh: missing:$missing (run: sudo scripts/install-deps.sh)" >&2
        exit 1
    fi
fi

# every request here goes to 127.0.0.1 itself, never through a proxy
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY='*' no_proxy='*'
# one descriptor per connection: wrk and the server need thousands
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TMP=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

fails=0
passes=0
ok() { echo "ok   $*"; passes=$((passes + 1)); }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
expect() { # expect WHAT GOT WANT
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got '$2', expected '$3'"; fi
}

# ---- a document root ----
mkdir -p "$TMP/root/sub"
head -c 4096 /dev/urandom >"$TMP/root/file4k.bin"
head -c 300000 /dev/urandom >"$TMP/root/big.bin"
printf '<h1>seacore</h1>\n' >"$TMP/root/index.html"
printf 'sub\n' >"$TMP/root/sub/index.html"
printf 'spaced\n' >"$TMP/root/with space.txt"

# ---- start: shard 0 picks a free port, both shards listen on it ----
"$BIN" --backend real --smp 2 --port 0 --address 127.0.0.1 --docroot "$TMP/root" \
    --header-timeout-ms 1000 >"$TMP/out" 2>"$TMP/err" &
PID=$!
PORT=
for _ in $(seq 50); do
    PORT=$(grep -o '127\.0\.0\.1:[0-9]*' "$TMP/out" 2>/dev/null | cut -d: -f2)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.2
done
if [ -z "$PORT" ]; then
    echo "httpd.sh: the server did not start" >&2
    cat "$TMP/out" "$TMP/err" >&2
    exit 1
fi
U=http://127.0.0.1:$PORT
C="curl -s --max-time 10"
echo "== seacore-httpd on $U ($(cat "$TMP/out"))"

# ---- curl ----
expect "GET /" "$($C $U/)" "Hello, world!"
head=$($C -I $U/ | tr -d '\r')
case "$head" in
*"HTTP/1.1 200 OK"*"Content-Length: 14"*) ok "HEAD / has the length and no body" ;;
*) fail "HEAD /: $head" ;;
esac
$C -v -o /dev/null -o /dev/null -o /dev/null $U/ "$U/chunked?n=2" $U/file4k.bin 2>"$TMP/ka"
expect "keep-alive: three URLs on one connection" "$(grep -c 'Re-using existing connection' "$TMP/ka")" 2
for f in file4k.bin big.bin big.bin; do # the second big.bin comes from the cache
    $C -o "$TMP/got" "$U/$f"
    if cmp -s "$TMP/got" "$TMP/root/$f"; then ok "static $f: same bytes"; else fail "static $f differs"; fi
done
$C -v -I $U/index.html $U/index.html 2>"$TMP/head" | tr -d '\r' >"$TMP/headout"
expect "HEAD of a file not yet cached, twice on one connection" \
    "$(grep -c 'Re-using existing connection' "$TMP/head") $(grep -c 'Content-Length: 17' "$TMP/headout")" "1 2"
expect "a directory's index.html" "$($C $U/sub/)" "sub"
expect "a directory without '/': 301" "$($C -o /dev/null -w '%{http_code} %{redirect_url}' $U/sub)" "301 $U/sub/"
expect "a %-encoded name" "$($C "$U/with%20space.txt")" "spaced"
expect "a missing file: 404" "$($C -o /dev/null -w '%{http_code}' $U/nope.html)" 404
expect "'..' above the root: 403" "$($C --path-as-is -o /dev/null -w '%{http_code}' "$U/../etc/passwd")" 403
expect "'%2e%2e' above the root: 403" "$($C --path-as-is -o /dev/null -w '%{http_code}' "$U/%2e%2e/etc/passwd")" 403
expect "POST on a file: 405" "$($C -o /dev/null -w '%{http_code}' -d x $U/file4k.bin)" 405
expect "chunked reply" "$($C "$U/chunked?n=3&size=5")" "aaaaabbbbbccccc"
expect "chunked reply to HTTP/1.0 (ends at close)" "$($C -0 "$U/chunked?n=2&size=3")" "aaabbb"
$C --data-binary @"$TMP/root/file4k.bin" -o "$TMP/echo" $U/echo
if cmp -s "$TMP/echo" "$TMP/root/file4k.bin"; then ok "POST /echo: 4 KiB back"; else fail "POST /echo"; fi
$C -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/root/big.bin" -o "$TMP/echo" $U/echo
if cmp -s "$TMP/echo" "$TMP/root/big.bin"; then ok "chunked POST /echo: 300 KB back"; else fail "chunked POST /echo"; fi
$C $U/stats >"$TMP/stats"
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["shards"]) == 2 and d["total"]["requests"] > 10' "$TMP/stats"; then
    ok "/stats: JSON with both shards"
else
    fail "/stats: $(cat "$TMP/stats")"
fi

# ---- raw requests ----
for what in limits pipeline garbage "slowloris 1000"; do
    echo "== httpd_raw.py $what"
    # shellcheck disable=SC2086
    out=$(timeout 120 python3 "$HERE/httpd_raw.py" "$PORT" $what 2>&1)
    rc=$?
    echo "$out" | sed 's/^/   /'
    if [ $rc -eq 0 ]; then ok "raw: $what"; else fail "raw: $what ($rc failures)"; fi
done

# ---- wrk: thousands of connections, then a static file ----
run_wrk() { # run_wrk WHAT ARGS...
    what=$1
    shift
    timeout 60 wrk "$@" >"$TMP/wrk" 2>&1
    rps=$(awk '/^Requests\/sec/ {print int($2)}' "$TMP/wrk")
    sed -n '/requests in/p;/Socket errors/p;/Non-2xx/p;/^Requests\/sec/p' "$TMP/wrk" | sed 's/^/   /'
    if [ -n "$rps" ] && [ "$rps" -gt 0 ] && ! grep -q 'Non-2xx' "$TMP/wrk"; then
        ok "wrk $what"
    else
        fail "wrk $what: $(cat "$TMP/wrk")"
    fi
}
run_wrk "-c 2000 on /" -t 2 -c 2000 -d 3s "$U/"
run_wrk "-c 100 on a 4 KiB file" -t 2 -c 100 -d 2s "$U/file4k.bin"
expect "still serving after wrk" "$($C $U/)" "Hello, world!"
accepted=$($C $U/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["accepted"])')
if [ "${accepted:-0}" -ge 2000 ]; then ok "accepted $accepted connections"; else fail "accepted ${accepted:-?}"; fi

# ---- a clean stop ----
kill -TERM "$PID"
rc=
for _ in $(seq 50); do
    if ! kill -0 "$PID" 2>/dev/null; then
        wait "$PID"
        rc=$?
        break
    fi
    sleep 0.2
done
PID=
expect "SIGTERM: exits 0 within 10 s" "${rc:-still running}" 0
if grep -q 'final counters' "$TMP/err"; then ok "final counters printed"; else fail "no final counters"; fi
# sanitizer reports, failed futures nobody handled (the stall detector's
# warnings are left alone: wrk and the server share two CPUs here)
if grep -qE 'ERROR: |runtime error|WARNING: ThreadSanitizer|never handled|made at ' "$TMP/err"; then
    fail "the server's stderr has errors:"
    sed 's/^/   /' "$TMP/err" | head -40
fi

echo "httpd: $passes passed, $fails failed"
[ $fails -eq 0 ]
