#!/bin/sh
# sim-sweep.sh — run every simulation test (build/bin/sim_*) over many seeds.
# Each seed runs twice and the two trace hashes must match (determinism).
# A failing seed is printed with the command that replays it.
#   SEEDS=n (default 500)  BUILD=dir (default build)
set -eu
BUILD=${BUILD:-build}
SEEDS=${SEEDS:-500}
status=0
for t in "$BUILD"/bin/sim_*; do
    [ -x "$t" ] || continue
    echo "== $t --sweep $SEEDS"
    "$t" --sweep "$SEEDS" || status=1
done
# The log's crash sweep must be able to fail: a log that acknowledges before
# the flush, and one whose recovery skips the checksum, must both be caught.
if [ -x "$BUILD/bin/sim_applog" ]; then
    for b in ack crc; do
        echo "== SIM_APPLOG_BROKEN=$b $BUILD/bin/sim_applog --sweep 100 (must fail)"
        if SIM_APPLOG_BROKEN=$b "$BUILD/bin/sim_applog" --sweep 100 >/dev/null 2>&1; then
            echo "FAILED: the crash sweep did not catch a broken log ($b)" >&2
            status=1
        fi
    done
fi
exit $status
