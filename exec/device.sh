#!/usr/bin/env bash
# device.sh: build the executor on a GPU machine (the device tool's) and run a named stage.
#   bash exec/device.sh build            configure + build servesim-exec and the exec GPU tests
#   bash exec/device.sh tests            gpu_exec_comm, gpu_exec_forward, servesim-exec verify
#   bash exec/device.sh generate B O     235B GPTQ-Int4 random weights, -tp 4, batch B, 1024 in, O out
#   bash exec/device.sh profile [--quick]
#   bash exec/device.sh verify           tiny model GPU vs C reference, tp 1/2/4, seeds 1-4
#   bash exec/device.sh accept           generate b=1,16,64 + profile into one DB + SQL dump
#   bash exec/device.sh kerntests        the kernels' GPU tests (gpu_kern_*), logs per test
#   bash exec/device.sh session          build, kerntests, tests, verify, accept: one call
# Logs go to $OUT (the device tool's result folder) when set. Only this tree's targets are
# built, so a half-edited file elsewhere cannot stop a measurement.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/exec-out}
mkdir -p "$OUT"
export SERVESIM_SOURCE_DIR=$PWD NCCL_NVLS_ENABLE=0
B=build-gpu/exec/servesim-exec
M=qwen3-235b-a22b-gptq-int4
case "${1:-}" in
  build)
    bash scripts/device-deps.sh unpack >/dev/null
    export PATH=/usr/local/cuda/bin:$PATH
    cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSERVESIM_DEPS_PREFIX=/tmp/deps \
          -DCMAKE_CUDA_ARCHITECTURES=90 >"$OUT/build.log" 2>&1 &&
    cmake --build build-gpu -j "$(nproc)" --target servesim-exec gpu_exec_comm gpu_exec_forward servesim \
          gpu_kern_attn gpu_kern_moe gpu_kern_w4a16 gpu_kern_layer bench_kernels \
          >>"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
    echo "build ok" ;;
  kerntests)
    for t in gpu_kern_attn gpu_kern_moe gpu_kern_w4a16 gpu_kern_layer; do
      timeout 300 build-gpu/tests/$t >"$OUT/$t.log" 2>&1; rc=$?
      echo "$t rc=$rc ($(grep -c . "$OUT/$t.log") lines; $(grep -ci fail "$OUT/$t.log") failing)"
      [ $rc -eq 0 ] || tail -5 "$OUT/$t.log"
    done ;;
  session)
    "$0" build || exit 1
    "$0" kerntests
    "$0" tests
    VERIFY_SEEDS="1 2" "$0" verify
    "$0" accept ;;
  tests)
    nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
    timeout 120 build-gpu/tests/gpu_exec_comm; echo "gpu_exec_comm rc=$?"
    timeout 200 build-gpu/tests/gpu_exec_forward; echo "gpu_exec_forward rc=$?" ;;
  generate)
    timeout 400 $B generate --model $M -tp 4 --batch "$2" --prompt-len 1024 --output-len "$3" \
      ${DB:+--db "$DB"}; echo "generate batch $2 rc=$?" ;;
  verify)
    for tp in 1 2 4; do for seed in ${VERIFY_SEEDS:-1 2 3 4}; do
      timeout 60 $B verify -tp $tp --seed $seed 2>&1 | head -1; done; done ;;
  accept)
    # the acceptance runs of issue 6: generate at batch 1, 16, 64 (1024 in, 128 out), the full
    # profile, all into one database, exported as a deterministic SQL dump
    DB=${DB:-$OUT/exec.db}
    for b in 1 16 64; do
      timeout 120 $B generate --model $M -tp 4 --batch $b --prompt-len 1024 --output-len 128 --db "$DB"
      echo "generate batch $b rc=$?"
    done
    timeout 200 $B profile --model $M -tp 4 --db "$DB" ${PROFILE_ARGS:-}; echo "profile rc=$?"
    build-gpu/servesim db export --db "$DB" -o "$OUT/exec_measurements.sql"; echo "export rc=$?" ;;
  profile)
    shift
    timeout 400 $B profile --model $M -tp 4 ${DB:+--db "$DB"} "$@"; echo "profile rc=$?" ;;
  *) echo "usage: $0 build|kerntests|tests|verify|accept|session|generate B O|profile [--quick]" >&2; exit 2 ;;
esac
