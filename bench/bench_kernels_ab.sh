#!/usr/bin/env bash
# bench_kernels_ab.sh: one device-tool call that times the working tree's kernels against another
# commit's, on the same machine and in the same call (machines differ by up to ~10% between calls,
# kernels/NOTES.md item 9), alternating the two builds so that drift hits both.
#   bash bench/bench_kernels_ab.sh REF [RUNS]     REF: a commit (e.g. HEAD, HEAD~1); RUNS: 2
#   bash bench/bench_kernels_ab.sh ENV [RUNS]     the working tree's one build twice: "new" under
#                                  NEW_ENV, "ref" under REF_ENV (e.g. REF_ENV="SERVESIM_W4WS_CFG=3",
#                                  a kernel switch against the default)
#   TABLES="--mid --small --moe"   the bench_kernels tables to compare (each run: new, then REF); a
#                                  table of several arguments joins them with '+', e.g.
#                                  "--gemm+--m+24,32,48,64+--only+down" (summed over all its rows)
#   GPU_TESTS=1                    run `ctest -L gpu` on the working tree's build first
#   GPU_TESTS_R=REGEX              with GPU_TESTS=1: only the GPU tests matching REGEX
#   REF_TGZ=FILE                   REF's tree from `git archive REF | gzip > FILE` made beforehand
#                                  (the device's copy of .git may lack recent commits)
# Each tree is timed by its own bench_kernels: against a REF older than 2b3cf89, whose batches of
# 20 calls touched only 20 weight copies, the TP=2/4 slices of down and gate_up and down at TP=1
# compare two methods (kernels/NOTES.md item 18).
# Needs the git history on the device (the device tool copies .git) and the CPU dependencies
# (.deps in carry; scripts/device-deps.sh). Logs go to $OUT/ab (or /tmp/kern-out/ab); the summary
# on stdout: for each GEMM table the summed microseconds at M = 64..256 (--mid) or 1..16
# (--small) beside cuBLAS bf16, the points at or under cuBLAS and the worst ratio; for --moe
# each token count's time for both builds (also for '+' tables of --moe, e.g. "--moe+--m+128,256").
set -uo pipefail
cd "$(dirname "$0")/.."
source bench/bench_lib.sh
REF=${1:?usage: bench/bench_kernels_ab.sh REF [RUNS]}
RUNS=${2:-2}
TABLES=${TABLES:---mid --small --moe}
OUT=${OUT:-/tmp/kern-out}
LOG="$OUT/ab"
mkdir -p "$LOG"
export PATH=/usr/local/cuda/bin:$PATH
if [ "$REF" = ENV ]; then
  REF_SHA="the same build under REF_ENV='${REF_ENV:-}' (new under NEW_ENV='${NEW_ENV:-}')"
elif [ -n "${REF_TGZ:-}" ]; then
  [ -f "$REF_TGZ" ] || { echo "bench_kernels_ab: REF_TGZ=$REF_TGZ: no such file" >&2; exit 2; }
  REF_SHA=$REF
else
  REF_SHA=$(git rev-parse --short "$REF^{commit}") || { echo "bench_kernels_ab: $REF: not a commit" >&2; exit 2; }
  # (the twenty-third session's HEAD runs timed the session's first commit: the device's .git
  # had none of the commits made since)
  case $REF in
    HEAD* | @*) echo "bench_kernels_ab: note: $REF is $REF_SHA here; the device's copy of .git may predate this session's commits (REF_TGZ is sure)" >&2 ;;
  esac
fi
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv | tee "$LOG/gpu.txt"
echo "new: working tree at $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' + uncommitted changes'); ref: $REF_SHA"
bash scripts/device-deps.sh unpack > /dev/null
REF_DIR=/tmp/ab-ref
if [ "$REF" != ENV ]; then
  rm -rf "$REF_DIR" && mkdir -p "$REF_DIR"
  if [ -n "${REF_TGZ:-}" ]; then tar xzf "$REF_TGZ" -C "$REF_DIR"; else git archive "$REF_SHA" | tar x -C "$REF_DIR"; fi
fi
JOBS=$(( $(nproc) / 2 > 1 ? $(nproc) / 2 : 1 ))
TARGETS=bench_kernels
[ "${GPU_TESTS:-0}" = 1 ] && TARGETS=all
( cmake_cfg . build-gpu && cmake --build build-gpu -j "$JOBS" --target $TARGETS ) > "$LOG/build-new.log" 2>&1 &
NEW_PID=$!
REF_RC=0
if [ "$REF" != ENV ]; then
  ( cmake_cfg "$REF_DIR" build && cmake --build "$REF_DIR/build" -j "$JOBS" --target bench_kernels ) > "$LOG/build-ref.log" 2>&1
  REF_RC=$?
fi
wait $NEW_PID
NEW_RC=$?
if [ $NEW_RC -ne 0 ] || [ $REF_RC -ne 0 ]; then
  echo "bench_kernels_ab: build failed (new rc $NEW_RC, ref rc $REF_RC; see $LOG/build-*.log)" >&2
  exit 1
fi
NEW_BIN=build-gpu/bench/bench_kernels
REF_BIN=$REF_DIR/build/bench/bench_kernels
[ "$REF" = ENV ] && REF_BIN=$NEW_BIN
if [ "${GPU_TESTS:-0}" = 1 ]; then
  (cd build-gpu && ctest -L gpu ${GPU_TESTS_R:+-R "$GPU_TESTS_R"} --output-on-failure > "$LOG/ctest-gpu.log" 2>&1)
  grep -E "tests passed|tests failed" "$LOG/ctest-gpu.log"
fi

for t in $TABLES; do
  name=$(printf '%s' "${t#--}" | tr -c 'A-Za-z0-9,_' '-')
  read -r -a args <<< "${t//+/ }"
  for r in $(seq 1 "$RUNS"); do
    env ${NEW_ENV:-} "$NEW_BIN" "${args[@]}" > "$LOG/$name-new-$r.txt" 2>&1
    env ${REF_ENV:-} "$REF_BIN" "${args[@]}" > "$LOG/$name-ref-$r.txt" 2>&1
    case $name in
      mid|small|gemm*)
        case $name in mid) lo=64 hi=256 rows="M = 64..256" ;; small) lo=1 hi=16 rows="M = 1..16" ;; *) lo=1 hi=1000000 rows="all rows" ;; esac
        for b in new ref; do
          echo "$t run $r, $rows: $b $(gemm_sum "$LOG/$name-$b-$r.txt" $lo $hi) ($(valid "$LOG/$name-$b-$r.txt"))"
        done ;;
      moe*)
        echo "$t run $r (tokens: new us / ref us; new $(valid "$LOG/$name-new-$r.txt")):"
        paste -d' ' <(awk -F'|' '$2 ~ /^ [0-9]+ $/ { print $2, $4 }' "$LOG/$name-new-$r.txt") \
                    <(awk -F'|' '$2 ~ /^ [0-9]+ $/ { print $4 }' "$LOG/$name-ref-$r.txt") |
          awk '{ printf "  %s: %s / %s\n", $1, $2, $3 }' ;;
      *) echo "$t run $r: logs in $LOG/$name-{new,ref}-$r.txt" ;;
    esac
  done
done
