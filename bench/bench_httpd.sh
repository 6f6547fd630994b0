#!/bin/sh
# bench_httpd.sh — seacore-httpd beside nginx, one core each, in the same run.
#
# Both servers get CPU 0 alone (httpd: --smp 1 --cpuset 0; nginx: one worker,
# master and worker pinned with taskset); wrk runs on CPU 1 with keep-alive
# connections. Two workloads: a small response (httpd's / route; nginx's
# `return 200` of the same 14 bytes) and a 4 KiB static file (the same file
# from the same directory; httpd through the disk API and its per-shard
# cache, nginx with sendfile). Each measurement is the median of several runs,
# the servers taking turns. Prints the project's BENCH lines (ratio =
# seacore / nginx: above 1, seacore is faster) and the servers' CPU time per
# request (from /proc, the median run's) on stderr.
#
#   bench/bench_httpd.sh [--quick] [--runs N] [--seconds S] [--connections C]
#   BUILD=dir (default build)
# Only 127.0.0.1 is used.
set -eu
BUILD=${BUILD:-build}
RUNS=5
SECS=5
CONNS=64
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) RUNS=1 SECS=1 ;;
    --runs) RUNS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --connections) CONNS=$2; shift ;;
    --help | -h) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench_httpd.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
HTTPD=$BUILD/bin/seacore-httpd
[ -x "$HTTPD" ] || { echo "bench_httpd.sh: build $HTTPD first (make)" >&2; exit 1; }
for t in wrk nginx taskset python3; do
    command -v "$t" >/dev/null 2>&1 || { echo "bench_httpd.sh: needs $t (scripts/install-deps.sh)" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "bench_httpd.sh: needs 2 CPUs" >&2; exit 1; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY='*' no_proxy='*'
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TMP=$(mktemp -d)
chmod 755 "$TMP"
SPID=
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
mkdir -p "$TMP/root"
head -c 4096 /dev/urandom >"$TMP/root/file4k.bin"
chmod 644 "$TMP/root/file4k.bin"
chmod 755 "$TMP/root"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- the servers ----
start_httpd() {
    PORT=$(free_port)
    "$HTTPD" --backend real --smp 1 --cpuset 0 --port "$PORT" --address 127.0.0.1 \
        --docroot "$TMP/root" --quiet >"$TMP/httpd.out" 2>"$TMP/httpd.err" &
    SPID=$!
    wait_port
    PIDS=$SPID
}

start_nginx() {
    PORT=$(free_port)
    mkdir -p "$TMP/ngx"
    cat >"$TMP/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $TMP/nginx.pid;
error_log $TMP/ngx/error.log error;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    sendfile on;
    default_type text/plain;
    client_body_temp_path $TMP/ngx/body;
    proxy_temp_path $TMP/ngx/proxy;
    fastcgi_temp_path $TMP/ngx/fastcgi;
    server {
        listen 127.0.0.1:$PORT;
        root $TMP/root;
        location = / { return 200 "Hello, world!\n"; }
    }
}
CONF
    taskset -c 0 nginx -c "$TMP/nginx.conf" -p "$TMP/ngx" 2>"$TMP/ngx/start.err" || {
        cat "$TMP/ngx/start.err" >&2
        exit 1
    }
    wait_port
    PIDS=$(pgrep -P "$(cat "$TMP/nginx.pid")" | tr '\n' ' ')$(cat "$TMP/nginx.pid")
}

stop_server() {
    if [ -n "$SPID" ]; then
        kill "$SPID" 2>/dev/null
        wait "$SPID" 2>/dev/null || true
        SPID=
    fi
    if [ -f "$TMP/nginx.pid" ]; then
        kill "$(cat "$TMP/nginx.pid")" 2>/dev/null || true
        for _ in $(seq 50); do [ -f "$TMP/nginx.pid" ] || break; sleep 0.1; done
        rm -f "$TMP/nginx.pid"
    fi
}

wait_port() {
    for _ in $(seq 50); do
        curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$PORT/" && return 0
        sleep 0.1
    done
    echo "bench_httpd.sh: server on $PORT did not answer" >&2
    exit 1
}

# CPU time (utime + stime, in clock ticks) of the server's processes; a
# process's /proc/PID/stat counts all its threads (shards, syscall threads)
cpu_ticks() {
    t=0
    for p in $PIDS; do
        [ -r "/proc/$p/stat" ] || continue
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo $t
}

# one run: prints "requests_per_s cpu_us_per_request"
run_once() { # run_once START_FN PATH
    $1
    curl -s -o /dev/null "http://127.0.0.1:$PORT$2" # warm (the cache, the page cache)
    c0=$(cpu_ticks)
    taskset -c 1 wrk -t 1 -c "$CONNS" -d "${SECS}s" "http://127.0.0.1:$PORT$2" >"$TMP/wrk" 2>&1
    c1=$(cpu_ticks)
    stop_server
    if grep -q 'Non-2xx' "$TMP/wrk"; then
        echo "bench_httpd.sh: non-2xx replies:" >&2
        cat "$TMP/wrk" >&2
        exit 1
    fi
    rps=$(awk '/^Requests\/sec/ {print $2}' "$TMP/wrk")
    n=$(awk '/requests in/ {print $1}' "$TMP/wrk")
    hz=$(getconf CLK_TCK)
    python3 -c "import sys; r,n,t,hz=map(float,sys.argv[1:]); print('%.0f %.2f' % (r, (t/hz)*1e6/max(n,1)))" \
        "$rps" "$n" "$((c1 - c0))" "$hz"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() { # measure NAME PATH
    : >"$TMP/sc"
    : >"$TMP/ng"
    for _ in $(seq "$RUNS"); do
        run_once start_httpd "$2" >>"$TMP/sc"
        run_once start_nginx "$2" >>"$TMP/ng"
    done
    sc=$(cut -d' ' -f1 "$TMP/sc" | median)
    ng=$(cut -d' ' -f1 "$TMP/ng" | median)
    sc_cpu=$(cut -d' ' -f2 "$TMP/sc" | median)
    ng_cpu=$(cut -d' ' -f2 "$TMP/ng" | median)
    ratio=$(python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$sc" "$ng")
    echo "BENCH name=httpd.$1 value=$sc unit=requests/s peer=nginx peer_value=$ng ratio=$ratio"
    echo "bench_httpd: $1: server CPU per request: seacore $sc_cpu us, nginx $ng_cpu us; runs: seacore [$(cut -d' ' -f1 "$TMP/sc" | tr '\n' ' ')] nginx [$(cut -d' ' -f1 "$TMP/ng" | tr '\n' ' ')]" >&2
}

echo "bench_httpd: $RUNS runs of ${SECS}s each, wrk -t1 -c$CONNS on CPU 1, servers on CPU 0" >&2
measure small /
measure static4k /file4k.bin
