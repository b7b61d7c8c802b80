#!/usr/bin/env bash
# device-deps.sh: make the CPU dependencies available on a GPU machine that has no package
# registry (the device tool's machines: Ubuntu 24.04 with CUDA + NCCL but no cJSON/libcsv/
# SQLite headers).
#   here:  scripts/device-deps.sh download   -> .deps/*.deb (git-ignored; pass .deps in carry)
#   there: scripts/device-deps.sh unpack     -> /tmp/deps, then build with
#          cmake -DSERVESIM_DEPS_PREFIX=/tmp/deps (searched first, with an rpath)
#   there: scripts/device-deps.sh build [cmake args]  unpacks and builds into build-gpu/
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${DEPS_PREFIX:-/tmp/deps}
case "${1:-}" in
  download)
    mkdir -p .deps && cd .deps
    apt-get download libcjson1 libcjson-dev libcsv3 libcsv-dev libsqlite3-0 libsqlite3-dev
    ls -l ;;
  unpack)
    mkdir -p "$PREFIX"
    for f in .deps/*.deb; do dpkg -x "$f" "$PREFIX"; done
    echo "unpacked into $PREFIX" ;;
  build)
    shift
    "$0" unpack
    export PATH=/usr/local/cuda/bin:$PATH
    cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSERVESIM_DEPS_PREFIX="$PREFIX" \
          -DCMAKE_CUDA_ARCHITECTURES=90 "$@"
    cmake --build build-gpu -j "$(nproc)" ;;
  *) echo "usage: $0 download|unpack|build [cmake args]" >&2; exit 2 ;;
esac
