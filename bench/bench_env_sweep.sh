#!/usr/bin/env bash
# bench_env_sweep.sh: one device-tool call that times the working tree's one build under several
# kernel settings, the settings alternating within each run so that the machine's drift hits all
# of them (machines differ by up to ~10% between calls and drift within one, kernels/NOTES.md
# items 9 and 25).
#   bash bench/bench_env_sweep.sh 'FLAGS' NAME=[VAR=VALUE[,VAR=VALUE...]] ...
#     FLAGS: bench_kernels' flags, e.g. '--moe --m 256,512' or '--gemm --m 256 --only qkv'
#     each NAME=...: one setting, its environment after the first '=' (empty: the defaults)
#   RUNS=2         runs of every setting
#   GPU_TESTS=1    build everything and run `ctest -L gpu` first (GPU_TESTS_R=REGEX: only those)
# Needs the CPU dependencies (.deps in carry; scripts/device-deps.sh). Logs go to $OUT/sweep (or
# /tmp/kern-out/sweep); on stdout, per run: with --moe one line a token count, its microseconds
# under each setting (with --parts also each grouped GEMM's alone, "us (gate_up / down)"); with a
# GEMM table each setting's summed microseconds, points at or under cuBLAS bf16 and worst ratio.
set -uo pipefail
cd "$(dirname "$0")/.."
source bench/bench_lib.sh
[ $# -ge 2 ] || { echo "usage: bench/bench_env_sweep.sh 'FLAGS' NAME=[ENV] [NAME=[ENV] ...]" >&2; exit 2; }
FLAGS=$1
shift
NAMES=()
ENVS=()
for s in "$@"; do
  case $s in
    *=*) NAMES+=("${s%%=*}"); ENVS+=("${s#*=}") ;;
    *) echo "bench_env_sweep: setting '$s' is not NAME=[ENV]" >&2; exit 2 ;;
  esac
done
RUNS=${RUNS:-2}
OUT=${OUT:-/tmp/kern-out}
LOG="$OUT/sweep"
mkdir -p "$LOG"
export PATH=/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv | tee "$LOG/gpu.txt"
echo "working tree at $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes'); flags: $FLAGS"
bash scripts/device-deps.sh unpack > /dev/null
TARGETS=bench_kernels
[ "${GPU_TESTS:-0}" = 1 ] && TARGETS=all
if ! { cmake_cfg . build-gpu && cmake --build build-gpu -j "$(nproc)" --target $TARGETS; } > "$LOG/build.log" 2>&1; then
  echo "bench_env_sweep: build failed (see $LOG/build.log)" >&2
  tail -20 "$LOG/build.log" >&2
  exit 1
fi
if [ "${GPU_TESTS:-0}" = 1 ]; then
  (cd build-gpu && ctest -L gpu ${GPU_TESTS_R:+-R "$GPU_TESTS_R"} --output-on-failure > "$LOG/ctest-gpu.log" 2>&1)
  grep -E "tests passed|tests failed|Failed|\*\*\*" "$LOG/ctest-gpu.log"
fi
BIN=build-gpu/bench/bench_kernels
read -r -a args <<< "$FLAGS"
for r in $(seq 1 "$RUNS"); do
  for i in "${!NAMES[@]}"; do
    env ${ENVS[$i]//,/ } "$BIN" "${args[@]}" > "$LOG/${NAMES[$i]}-$r.txt" 2>&1
  done
  case " $FLAGS " in
    *" --moe "*)
      printf 'run %s, us | tokens' "$r"
      for n in "${NAMES[@]}"; do printf ' | %s (%s)' "$n" "$(valid "$LOG/$n-$r.txt")"; done
      echo
      # (with --parts: "us (gate_up / down)")
      for i in "${!NAMES[@]}"; do
        awk -F'|' '$2 ~ /^ [0-9]+ $/ { v = $4 + 0; if (NF >= 11) v = v " (" $9 + 0 " / " $10 + 0 ")"; print $2 + 0, v }' \
          "$LOG/${NAMES[$i]}-$r.txt" > "$LOG/.col$i"
      done
      awk -v n="${#NAMES[@]}" -v dir="$LOG" 'BEGIN {
          for (i = 0; i < n; i++) { f = dir "/.col" i; while ((getline line < f) > 0) { k = line; sub(/ .*/, "", k); x = line; sub(/^[^ ]* /, "", x); t[k] = 1; v[k, i] = x } }
          m = 0; for (k in t) keys[++m] = k + 0
          for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (keys[b] < keys[a]) { x = keys[a]; keys[a] = keys[b]; keys[b] = x }
          for (a = 1; a <= m; a++) { printf "  %d", keys[a]; for (i = 0; i < n; i++) printf " | %s", ((keys[a], i) in v) ? v[keys[a], i] : "-"; printf "\n" } }'
      rm -f "$LOG"/.col* ;;
    *)
      for n in "${NAMES[@]}"; do echo "run $r, $n: $(gemm_sum "$LOG/$n-$r.txt" 1 1000000) ($(valid "$LOG/$n-$r.txt"))"; done ;;
  esac
done
