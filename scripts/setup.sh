#!/usr/bin/env bash
# setup.sh: install the Debian 12 packages servesim needs (if missing) and build it into build/.
# Used by scripts/run.sh and scripts/test.sh; safe to run again (installs nothing twice).
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS="build-essential cmake pkg-config libsqlite3-dev libcjson-dev libcsv-dev sqlite3
      libopenmpi-dev openmpi-bin
      python3-matplotlib python3-pandas jupyter-nbconvert python3-ipykernel"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# CUDA lives in /usr/local/cuda on the project's machines; CMake finds nvcc there if present.
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$BUILD" -j "$(nproc)" 2>&1 | grep -E "error|warning: |Error" || true
cmake --build "$BUILD" -j "$(nproc)" >/dev/null
