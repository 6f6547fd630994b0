#!/bin/sh
# iotune.sh — seacore-iotune end to end: measure a small file under /tmp with
# short phases, check the model it writes (every key, numbers above 0, the
# comment header, the test file removed), load it back the way a run does
# (sc_io_model_load, then the engine with --io-properties-file), and check
# that bad input is refused with a clear message and the right exit code.
#   BUILD=dir (default build)
set -eu
BUILD=${BUILD:-build}
IOTUNE=$BUILD/bin/seacore-iotune
dir=$(mktemp -d /tmp/seacore-iotune-test.XXXXXX)
trap 'rm -rf "$dir"' EXIT

fail() {
    echo "FAILED: iotune.sh: $*" >&2
    [ -f "$dir/err" ] && cat "$dir/err" >&2
    exit 1
}

# expect CODE CMD...: run CMD, which must exit with CODE and say why on stderr
expect() {
    want=$1
    shift
    rc=0
    "$@" >/dev/null 2>"$dir/err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, expected $want"
    [ "$want" -eq 0 ] || [ -s "$dir/err" ] || fail "'$*' failed without a message"
}

# check_model FILE: every key present and above 0; it loads as written
check_model() {
    for k in read_iops write_iops read_bandwidth write_bandwidth latency_goal_us; do
        v=$(sed -n "s/^$k: \([0-9]*\)$/\1/p" "$1")
        [ -n "$v" ] && [ "$v" -gt 0 ] || fail "$1: '$k' missing or 0"
    done
    grep -q '^# seacore disk model, written by seacore-iotune on ' "$1" || fail "$1: no header"
    grep -q '^#   random read ' "$1" || fail "$1: the header does not say what was measured"
    "$IOTUNE" --check-model "$1" >"$dir/back" 2>"$dir/err" || fail "--check-model $1"
    grep -v '^#' "$1" | cmp -s - "$dir/back" || fail "$1 does not read back as written"
}

echo "== iotune: bad input"
expect 2 "$IOTUNE"                                          # no --dir
expect 2 "$IOTUNE" --dir "$dir" --backend sim                 # the simulator has no disk to measure
expect 2 "$IOTUNE" --dir "$dir" --file-size 12Q
expect 2 "$IOTUNE" --dir "$dir" --file-size 1M                # too small
expect 2 "$IOTUNE" --dir "$dir" --depth 0
expect 2 "$IOTUNE" --dir "$dir" --io-properties-file "$dir/x" # a model would throttle it
expect 2 "$IOTUNE" --no-such-option
expect 1 "$IOTUNE" --dir "$dir/missing"
expect 1 "$IOTUNE" --dir /etc/hostname                        # not a directory
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
    expect 1 "$IOTUNE" --dir /dev/shm --file-size 4M --duration-ms 10
    grep -q tmpfs "$dir/err" || fail "the tmpfs refusal does not say tmpfs"
fi
printf 'read_iops: 10\nwrite_iops: 10\n' >"$dir/half.conf"
expect 1 "$IOTUNE" --check-model "$dir/half.conf"             # bandwidths missing
expect 1 "$IOTUNE" --check-model "$dir/none.conf"

if [ "$(stat -f -c %T "$dir")" = tmpfs ]; then
    echo "SKIP: iotune: /tmp is tmpfs here; the measurement needs a disk filesystem"
    exit 0
fi

echo "== iotune: measure 8 MiB, linux-aio, into a file"
expect 0 "$IOTUNE" --dir "$dir" --file-size 8M --duration-ms 100 --output "$dir/io.conf"
check_model "$dir/io.conf"
ls "$dir" | grep -q '^seacore-iotune\.' && fail "the test file was left behind"

echo "== iotune: measure 4 MiB, io_uring, to stdout"
"$IOTUNE" --dir "$dir" --file-size 4M --duration-ms 50 --depth 8 --reactor-backend io_uring \
    >"$dir/io2.conf" 2>"$dir/err" || fail "io_uring run"
check_model "$dir/io2.conf"
grep -q 'reactor backend io_uring' "$dir/io2.conf" || fail "the header does not name io_uring"
ls "$dir" | grep -q '^seacore-iotune\.' && fail "the test file was left behind"
echo "iotune: ok"
