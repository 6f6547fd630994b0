#!/bin/sh
# check-examples.sh — run the chapters' example programs and the demo, in
# both worlds, as the test suite does. Every program must exit 0.
#   BUILD=dir (default build)
set -eu
BUILD=${BUILD:-build}
fail=0
run() {
    echo "== $*"
    if ! timeout 60 "$@" >/dev/null 2>"$BUILD/example.err"; then
        echo "FAILED: $*" >&2
        cat "$BUILD/example.err" >&2
        fail=1
    fi
}
for ex in "$BUILD"/bin/ch[0-9][0-9]_*; do
    [ -x "$ex" ] || continue
    case "$(basename "$ex")" in
    ch01_*) run "$ex" --quick ;;  # plain pthreads, not a seacore app
    *)
        run "$ex" --backend sim
        run "$ex" --backend real
        ;;
    esac
done
# benchmarks check their own results: a quick run keeps them from rotting
for b in "$BUILD"/bench/bench_*; do
    [ -x "$b" ] && run "$b" --quick
done
if [ -x "$BUILD/bin/seacore-demo" ]; then
    run "$BUILD/bin/seacore-demo" --backend sim
    run "$BUILD/bin/seacore-demo" --backend real
    # bad options are refused with exit code 2
    if "$BUILD/bin/seacore-demo" --no-such-option >/dev/null 2>&1; then
        echo "FAILED: demo accepted a bad option" >&2
        fail=1
    else
        rc=$?
        [ "$rc" -eq 2 ] || { echo "FAILED: bad option gave exit $rc, expected 2" >&2; fail=1; }
    fi
    # the same seed gives the same trace hash
    a=$("$BUILD/bin/seacore-demo" --seed 7 --sim-chaos 2>&1 >/dev/null | grep -o 'trace=[0-9a-f]*')
    b=$("$BUILD/bin/seacore-demo" --seed 7 --sim-chaos 2>&1 >/dev/null | grep -o 'trace=[0-9a-f]*')
    if [ -z "$a" ] || [ "$a" != "$b" ]; then
        echo "FAILED: demo seed 7 gave '$a' then '$b'" >&2
        fail=1
    fi
fi
if [ -x "$BUILD/bin/seacore-applog" ]; then
    run "$BUILD/bin/seacore-applog" --backend sim
    run "$BUILD/bin/seacore-applog" --backend sim --sim-disk-eio-ppm 20000 --writers 16
    # a real fdatasync takes milliseconds: few records
    run "$BUILD/bin/seacore-applog" --backend real --records 200
fi
# httpd in the simulator: its own simulated clients check every reply
if [ -x "$BUILD/bin/seacore-httpd" ]; then
    run "$BUILD/bin/seacore-httpd" --backend sim --seed 3 --sim-chaos
fi
if [ -x "$BUILD/bin/seacore-memcached" ]; then
    # the flagship demo: checking clients must find nothing, in the
    # simulator (also with network faults) and on the real machine
    run "$BUILD/bin/seacore-memcached" --smp 4
    run "$BUILD/bin/seacore-memcached" --smp 3 --sim-net-reset-ppm 2000 --sim-chaos
    run "$BUILD/bin/seacore-memcached" --backend real --smp 2 --port 0 --clients 4 --ops 200
    # the same seed gives the same trace hash
    a=$("$BUILD/bin/seacore-memcached" --seed 7 --sim-chaos 2>&1 >/dev/null | grep -o 'trace=[0-9a-f]*')
    b=$("$BUILD/bin/seacore-memcached" --seed 7 --sim-chaos 2>&1 >/dev/null | grep -o 'trace=[0-9a-f]*')
    if [ -z "$a" ] || [ "$a" != "$b" ]; then
        echo "FAILED: seacore-memcached seed 7 gave '$a' then '$b'" >&2
        fail=1
    fi
fi
exit $fail
