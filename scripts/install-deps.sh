#!/bin/sh
# install-deps.sh — install every Debian package seacore uses.
#   build and tests: gcc, make, pkg-config, Check
#   engines:         libaio, liburing, libnuma, DPDK
#   docs:            Doxygen, graphviz
#   bench peers:     libuv, libevent, Concurrency Kit, jemalloc, mimalloc,
#                    tcmalloc (gperftools), Boost.Context, fio, nginx (light), memcached
#   clients:         curl, wrk, python3 (tests/integration, bench_httpd.sh),
#                    libmemcached-tools (memccp, memccat, memcstat,
#                    memccapable, memcslap), netcat-openbsd
# Run as root (or through sudo). Safe to run again.
set -eu
PKGS="build-essential pkg-config check libsubunit-dev \
      libaio-dev liburing-dev libnuma-dev libdpdk-dev \
      doxygen graphviz \
      libuv1-dev libevent-dev libck-dev \
      libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev \
      libboost-context-dev fio \
      curl wrk nginx-light python3 memcached libmemcached-tools netcat-openbsd"
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: needs root: sudo $0" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
echo "install-deps.sh: installed: $PKGS" | tr -s ' ' >&2
