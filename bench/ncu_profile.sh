#!/usr/bin/env bash
# ncu_profile.sh: one kernel launch of bench_kernels under Nsight Compute, on a device machine.
# It keeps what kernels/NOTES.md item 23 read, so that a call brings back files, not a report
# to open:
#   bash bench/ncu_profile.sh NAME KERNEL_REGEX [BENCH_KERNELS ARGS...]
#   e.g. SERVESIM_W4WS_ROWS=128 SERVESIM_W4WS_WG=2 bash bench/ncu_profile.sh ws128 w4ws_kernel --only o_proj --m 128
# It profiles the first launch whose name matches KERNEL_REGEX with `--set full`, clocks
# unlocked (the timing runs' state; CLOCKS=base locks them as ncu does by default) and caches
# flushed before the launch (ncu's default). Then, under $OUT (or /tmp/ncu-out):
#   NAME_details.txt     the report's sections
#   NAME_raw.csv.gz      every metric collected (one row)
#   NAME_src.csv.gz      the source page with SASS, per instruction: samples by stall reason,
#                        executions
#   NAME_stalls.txt      scripts/sass.py's summary of that page (the 40 costliest instructions)
# CHAIN=1 profiles instead a whole timed chain of W4A16 calls as one workload (`--graph-profiling
# graph`; bench_kernels' BK_PROFILE_CHAIN brackets one extra replay of each GEMM chain's graph,
# after the warm-up one, with cudaProfilerStart/Stop; the first such chain is profiled, so pick
# one with --only and --m). The calls overlap there through their dependency waits, but the
# profiled chain ran ~2.3x slower than the timed one (qkv M=1, kernels/NOTES.md item 25).
# KERNEL_REGEX is then unused (give '-'). SKIP=N profiles the (N+1)-th matching launch instead of
# the first (e.g. the fused MoE's down, the second w4ws_kernel launch of a forward: SKIP=1).
# Four files a profile; the device tool returns at most 8 files from $OUT, so two profiles a
# call. BIN=path picks another bench_kernels (e.g. a reference build); by default it is
# build-gpu's, built here if missing (CPU dependencies from .deps, scripts/device-deps.sh).
# The ncu commands are those of the twentieth session's device calls; the script's first run on
# a device (twenty-first session) is bench/profiles/h200-2026-11-29-w4ws64-qkv.
set -uo pipefail
cd "$(dirname "$0")/.."
NAME=${1:?usage: bench/ncu_profile.sh NAME KERNEL_REGEX [BENCH_KERNELS ARGS...]}
RE=${2:?usage: bench/ncu_profile.sh NAME KERNEL_REGEX [BENCH_KERNELS ARGS...]}
shift 2
OUT=${OUT:-/tmp/ncu-out}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
command -v ncu >/dev/null || { echo "ncu_profile: no ncu in PATH" >&2; exit 2; }
BIN=${BIN:-build-gpu/bench/bench_kernels}
if [ ! -x "$BIN" ]; then
  bash scripts/device-deps.sh unpack >/dev/null &&
    cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSERVESIM_DEPS_PREFIX=/tmp/deps -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null &&
    cmake --build build-gpu -j "$(nproc)" --target bench_kernels >"$OUT/${NAME}_build.log" 2>&1 ||
    { echo "ncu_profile: build failed ($OUT/${NAME}_build.log)" >&2; exit 1; }
  rm -f "$OUT/${NAME}_build.log"
fi
CLOCK=none
[ "${CLOCKS:-}" = base ] && CLOCK=base
REP=$(mktemp -d)/"$NAME"
if [ "${CHAIN:-0}" = 1 ]; then
  FILTER=(--profile-from-start off --graph-profiling graph)
  export BK_PROFILE_CHAIN=1
else
  FILTER=(--kernel-name "regex:$RE")
fi
ncu "${FILTER[@]}" --launch-skip "${SKIP:-0}" --launch-count 1 --set full --import-source no --clock-control "$CLOCK" -f -o "$REP" \
  "$BIN" "$@" >"$OUT/${NAME}_run.log" 2>&1 || { echo "ncu_profile: ncu failed ($OUT/${NAME}_run.log)" >&2; exit 1; }
[ -f "$REP.ncu-rep" ] || { echo "ncu_profile: no kernel matched '$RE' ($OUT/${NAME}_run.log)" >&2; exit 1; }
rm -f "$OUT/${NAME}_run.log" # (the bench's own table; the report has the kernel)
ncu --import "$REP.ncu-rep" --page details >"$OUT/${NAME}_details.txt" 2>&1
ncu --import "$REP.ncu-rep" --page raw --csv 2>&1 | gzip >"$OUT/${NAME}_raw.csv.gz"
ncu --import "$REP.ncu-rep" --page source --csv --print-source sass 2>&1 | gzip >"$OUT/${NAME}_src.csv.gz"
python3 scripts/sass.py stalls "$OUT/${NAME}_src.csv.gz" --top 40 >"$OUT/${NAME}_stalls.txt" 2>&1
head -1 "$OUT/${NAME}_stalls.txt"
