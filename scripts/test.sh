#!/usr/bin/env bash
# test.sh: set up, build, and run the whole test suite through ctest, then the CPU code again
# under AddressSanitizer + UndefinedBehaviorSanitizer. GPU tests (label gpu) skip without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
BUILD=build-asan bash scripts/setup.sh -DCMAKE_BUILD_TYPE=Debug -DSERVESIM_SANITIZE=ON -DSERVESIM_CUDA=OFF
ctest --test-dir build-asan --output-on-failure -j "$(nproc)" -L cpu
