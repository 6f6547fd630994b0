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
exit $status
