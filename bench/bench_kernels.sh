#!/usr/bin/env bash
# bench_kernels.sh: one device-tool call for the kernels: build the kernel targets (CMake; if
# another module's code does not build, compile the kernel sources directly with nvcc), run the
# CPU and GPU kernel tests, then bench_kernels, then issue 5's acceptance lines from both
# (bench/acceptance.py, into $OUT/acceptance.txt). Logs go to $OUT (or /tmp/kern-out).
#   bash bench/bench_kernels.sh [bench flags, e.g. --quick]
#   TUNE=1     time the small-M variants and large-M tiles first; the full run uses the fastest
#   PRELOAD=1  time the preload path for 1..8 rows (SERVESIM_W4_PRELOAD, _W4P_CFG, _W4P_TRIGGER)
#              against the split-K kernel at every shape and slice, into $OUT/preload.txt
#   TRACE=1    the preload kernel's per-block timeline (bench_w4p_trace) at 1 and 8 rows, into
#              $OUT/trace.txt
#   STREAMK=1  time the stream-K small-M path (SERVESIM_W4_STREAMK) at cluster sizes, trigger places
#              and warps a block (STREAMK_CFGS) against the split-K kernel, into $OUT/streamk.txt
#   WSSK=1     time the wgmma kernel's schedules for 33..256 rows (SERVESIM_W4WS_SK=0/1/2: never
#              stream-K, the rule, always) at every shape and slice, into $OUT/wssk.txt
set -uo pipefail
cd "$(dirname "$0")/.."
source bench/bench_lib.sh
OUT=${OUT:-/tmp/kern-out}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
bash scripts/device-deps.sh unpack > /dev/null
TESTS="test_kern_w4a16 test_kern_moe test_kern_norm test_kern_attn test_kern_layer gpu_kern_w4a16 gpu_kern_moe gpu_kern_attn gpu_kern_layer"
BIN=""
if cmake_cfg . build-gpu > "$OUT/build.log" 2>&1 &&
   cmake --build build-gpu -j "$(nproc)" --target $TESTS bench_kernels bench_w4p_trace >> "$OUT/build.log" 2>&1; then
  BIN=build-gpu
  for t in $TESTS; do cp "build-gpu/tests/$t" "build-gpu/$t" 2>/dev/null; done
  cp build-gpu/bench/bench_w4p_trace build-gpu/bench_w4p_trace
  cp build-gpu/bench/bench_kernels build-gpu/bench_kernels
else
  echo "CMake build failed (see build.log); compiling the kernel sources directly" | tee -a "$OUT/build.log"
  BIN=/tmp/kb
  mkdir -p $BIN
  FLAGS="-O2 -I. -I/usr/local/cuda/include"
  for f in kernels/*.cu; do nvcc -std=c++17 -arch=sm_90 $FLAGS --expt-relaxed-constexpr -c "$f" -o "$BIN/$(basename "$f").o" & done
  for f in kernels/ref_*.c kernels/*_plan.c common/err.c common/rng.c; do gcc -std=gnu11 $FLAGS -c "$f" -o "$BIN/$(basename "$f").o" & done
  wait
  for t in $TESTS; do
    gcc -std=gnu11 $FLAGS -c "tests/$t.c" -o "$BIN/$t.o" &&
    g++ -o "$BIN/$t" "$BIN/$t.o" $BIN/*.cu.o $BIN/*.c.o -L/usr/local/cuda/lib64 -lcudart -lcublas -lm
  done >> "$OUT/build.log" 2>&1
  nvcc -std=c++17 -arch=sm_90 $FLAGS -o $BIN/bench_kernels bench/bench_kernels.cu $BIN/*.cu.o $BIN/*.c.o -lcublas >> "$OUT/build.log" 2>&1
fi
tail -3 "$OUT/build.log"
status=0
# (the device tool returns at most 8 files: all test logs go into one)
for t in $TESTS; do
  echo "== $t"
  if SERVESIM_SOURCE_DIR=$PWD timeout 300 "$BIN/$t" > /tmp/kern-test.log 2>&1; then
    cat /tmp/kern-test.log; echo "PASS $t"
  else
    cat /tmp/kern-test.log; echo "FAIL $t"
  fi
done > "$OUT/tests.txt" 2>&1
# the GEMM test again under each path switch (tests/gpu_kern_w4a16.variants: the ctest
# gpu_kern_w4a16_SUFFIX list)
grep -E '^[a-z0-9]+\|' tests/gpu_kern_w4a16.variants | while IFS='|' read -r suffix envs; do
  { echo "== gpu_kern_w4a16 $envs"
    if env $(echo "$envs" | tr , " ") timeout 300 "$BIN/gpu_kern_w4a16" < /dev/null > /tmp/kern-test.log 2>&1; then
      cat /tmp/kern-test.log; echo "PASS gpu_kern_w4a16_$suffix"
    else cat /tmp/kern-test.log; echo "FAIL gpu_kern_w4a16_$suffix"; fi; } >> "$OUT/tests.txt" 2>&1
done
grep -E "^(PASS|FAIL) " "$OUT/tests.txt"
if [ "${TUNE:-0}" = 1 ]; then
  # Compare the small-M variants: the dense GEMMs take the one with the least summed time over
  # the four TP=1 shapes at M = 1, 8, 16; the MoE experts the fastest fused MoE at 8 tokens.
  best=""; best_t=""; bmoe=""; bmoe_t=""
  for v in ${VARIANTS:-0 1 2 3 4 5 6 7 8 9 10}; do
    SERVESIM_W4_VARIANT=$v SERVESIM_W4_VARIANT_MOE=$v timeout 120 "$BIN/bench_kernels" --tune > /tmp/kern-tune.txt 2>&1
    grep -E "VARIANT|^\| (qkv|o_proj|gate_up|down) |^\| (1|8|32) \||validation" /tmp/kern-tune.txt >> "$OUT/tune.txt"
    t=$(awk -F'|' '/^\| (qkv|o_proj|gate_up|down) /{s+=$7} END{print s+0}' /tmp/kern-tune.txt)
    tm=$(awk -F'|' '/^\| 8 \|/{s+=$4} END{print s+0}' /tmp/kern-tune.txt)
    grep -q "all configurations passed" /tmp/kern-tune.txt || { t=999999; tm=999999; }
    echo "variant $v: dense summed us $t, fused MoE 8 tokens us $tm" | tee -a "$OUT/tune.txt"
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best_t)}"; then best=$v; best_t=$t; fi
    if [ -z "$bmoe" ] || awk "BEGIN{exit !($tm < $bmoe_t)}"; then bmoe=$v; bmoe_t=$tm; fi
  done
  echo "best variant: dense $best ($best_t us), MoE $bmoe ($bmoe_t us)" | tee -a "$OUT/tune.txt"
  export SERVESIM_W4_VARIANT=$best SERVESIM_W4_VARIANT_MOE=$bmoe
  best=""; best_t=""
  for v in 0 1 2; do
    SERVESIM_W4_LARGE=$v timeout 120 "$BIN/bench_kernels" --tune-large > /tmp/kern-tune.txt 2>&1
    grep -E "VARIANT|^\| (qkv|o_proj|gate_up|down) |validation" /tmp/kern-tune.txt >> "$OUT/tune.txt"
    t=$(awk -F'|' '/^\| (qkv|o_proj|gate_up|down) /{s+=$7} END{print s+0}' /tmp/kern-tune.txt)
    grep -q "all configurations passed" /tmp/kern-tune.txt || t=999999
    echo "large $v: summed us $t" | tee -a "$OUT/tune.txt"
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best_t)}"; then best=$v; best_t=$t; fi
  done
  echo "best large: $best ($best_t us)" | tee -a "$OUT/tune.txt"
  export SERVESIM_W4_LARGE=$best
fi
if [ "${STREAMK:-0}" = 1 ]; then
  # off, then cluster size : early trigger (1) or after the main loop (0) : warps a block
  for cfg in ${STREAMK_CFGS:-off 1:1:16 2:1:16 1:1:8 2:1:8 1:0:16}; do
    if [ $cfg = off ]; then envs="SERVESIM_W4_STREAMK=0"
    else IFS=: read -r cl trig warps <<< "$cfg"
      envs="SERVESIM_W4_STREAMK=1 SERVESIM_W4_STREAMK_CLUSTER=$cl SERVESIM_W4_STREAMK_TRIGGER=$trig SERVESIM_W4_STREAMK_WARPS=$warps"; fi
    env $envs timeout 120 "$BIN/bench_kernels" --tune --gemm > /tmp/kern-tune.txt 2>&1
    { echo "== $envs"
      grep -E "^\| (qkv|o_proj|gate_up|down) " /tmp/kern-tune.txt | awk -F'|' '{printf "%s M=%s %s us (%sx); ", $2, $6, $7, $9}'
      echo
      awk -F'|' '/^\| (qkv|o_proj|gate_up|down) /{s+=$7} END{print "summed us", s+0}' /tmp/kern-tune.txt
      grep validation /tmp/kern-tune.txt; } | tee -a "$OUT/streamk.txt"
  done
fi
# One timed run of bench_kernels under the environment $1 (VAR=value words) with flag $2,
# appended to file $3 (label suffix $4): each shape's line, the summed times (all rows, rows <= 8,
# rows >= 64 beside cuBLAS bf16) and the validation line.
ab_run() {
  env $1 timeout 120 "$BIN/bench_kernels" "$2" > /tmp/kern-tune.txt 2>&1
  { echo "== $1${4:+ ($4)}"
    grep -E "^\| (qkv|o_proj|gate_up|down) " /tmp/kern-tune.txt |
      awk -F'|' '{printf "%s TP%s M=%s %s us (%sx; cuBLAS %s)\n", $2, $3, $6, $7, $9, $11}'
    awk -F'|' '/^\| (qkv|o_proj|gate_up|down) /{s+=$7; if ($6 + 0 <= 8) t+=$7; if ($6 + 0 >= 64) {u+=$7; c+=$11}}
               END{print "summed us", s+0, "(M <= 8:", t+0 "; M >= 64:", u+0, "against cuBLAS", c+0 ")"}' /tmp/kern-tune.txt
    grep validation /tmp/kern-tune.txt; } | tee -a "$3"
}
if [ "${PRELOAD:-0}" = 1 ]; then
  # the preload path (M <= 8) off, on with its own choice, and each configuration forced (a
  # forced one that needs more than 8 splits falls back to the split-K kernel); every shape and
  # slice at M = 1, 4, 8, 16, same machine, into $OUT/preload.txt
  for envs in SERVESIM_W4_PRELOAD=0 SERVESIM_W4_PRELOAD=1 SERVESIM_W4P_TRIGGER=0 \
              SERVESIM_W4P_CFG=0 SERVESIM_W4P_CFG=1 SERVESIM_W4P_CFG=2 SERVESIM_W4P_CFG=3 SERVESIM_W4P_CFG=4 \
              SERVESIM_W4P_CFG=5; do
    ab_run "$envs" --small "$OUT/preload.txt"
  done
fi
if [ "${WSSK:-0}" = 1 ]; then
  # the wgmma kernel's schedule for 33..256 rows: never stream-K, the rule (default), always;
  # every shape and slice at M = 32..256, twice each, alternating, into $OUT/wssk.txt
  for r in 1 2; do
    for envs in SERVESIM_W4WS_SK=0 SERVESIM_W4WS_SK=1 SERVESIM_W4WS_SK=2; do
      ab_run "$envs" --mid "$OUT/wssk.txt" "run $r"
    done
  done
fi
if [ "${TRACE:-0}" = 1 ]; then
  { "$BIN/bench_w4p_trace" 1; "$BIN/bench_w4p_trace" 8 | tail -n +5; } > "$OUT/trace.txt" 2>&1
fi
timeout 400 "$BIN/bench_kernels" "$@" 2>&1 | tee "$OUT/bench.txt"
# issue 5's acceptance lines from that run and the tests above (bench/acceptance.py; a partial
# run, e.g. --mid, says which lines its tables lack)
python3 bench/acceptance.py "$OUT/bench.txt" "$OUT/tests.txt" 2>&1 | tee "$OUT/acceptance.txt"
