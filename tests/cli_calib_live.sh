#!/usr/bin/env bash
# cli_calib_live: the simulator against the live executor's own measurements.
# Imports the committed 4x H100 TP=4 dump (db/measurements/h100x4-qwen3-235b-tp4-exec-*.sql:
# runs 1-3 `servesim-exec generate` at batch 1, 16, 64 with 1024-token prompts and 128 output
# tokens, run 4 `profile --quick`) and simulates the same three workloads (all B requests at t=0,
# fixed lengths, no prompt inflation, max_num_batched_tokens 8192, CUDA graphs) with the
# roofline and the calibrated model. What it holds the calibrated model to, and why these bounds
# (figures: bench/RESULTS.md, "Simulator vs live executor (H100, TP=4)"):
#  - coverage: every op of these runs is priced from measurements (>= 95%, no roofline fallback);
#  - provenance: one profile run on the H100, and only the decode-attention rows of the path the
#    engine's decode steps take (16 decode_split_heads points, not also the 16 library ones);
#  - decode per token at batch 1 and 16, with the simulator's launch/host term taken out (the
#    executor has no vLLM Python host path; its graph replays carry their own launch gaps), within
#    10% of the measured median decode step (15.22 / 25.49 ms). The model is +4.6% / +4.5% today;
#    the launch latency inside each op timed alone costs ~3-5% and the two 8 KiB all-reduce
#    timings of the dump differ by 46%, so 10% is the noise of what calibrates it. Mixing the
#    library kernel into the decode attention (the bug fixed with this test) gave +13% at batch 1;
#  - TTFT (avg and max) within 15% at each batch: the prefill steps replay within +3.5-7.6% of the
#    measured steps, and the vLLM host term adds up to 9% at batch 1 (under 1% at 16 and 64);
#    and three times closer than the roofline's (which is 56-61% low on prefill);
#  - the same inputs give the same bytes.
source "$(dirname "$0")/cli_lib.sh"
export SOURCE_DATE_EPOCH=1795000000

DUMP=$(ls "${SERVESIM_SOURCE_DIR:?}"/db/measurements/h100x4-qwen3-235b-tp4-exec-2026-11-28.sql 2>/dev/null)
if [ -z "$DUMP" ]; then echo "cli_calib_live: the committed H100 dump is missing (skipped)"; exit 77; fi
"$BIN" db import --db "$TMP/live.db" "$DUMP" >"$TMP/out" 2>&1 && ok || fail "import: $(cat "$TMP/out")"

# measured by servesim-exec generate (run_metrics of runs 1-3; bench/RESULTS.md "Executor")
declare -A TTFT_AVG=([1]=113.146 [16]=1001.785 [64]=2997.804)   # ms
declare -A TTFT_MAX=([1]=113.146 [16]=1335.520 [64]=5325.654)   # ms
declare -A DECODE=([1]=15.2226 [16]=25.4914 [64]=45.8485)       # ms, median decode step

sim() { # sim B COST OUTFILE
  "$BIN" simulate --model qwen3-235b-a22b-gptq-int4 --hardware h100-sxm -tp 4 --max-num-batched-tokens 8192 \
    --dataset random --number "$1" --parallel "$1" --min-prompt-length 1024 --max-prompt-length 1024 \
    --min-tokens 128 --max-tokens 128 --prompt-inflation 0 --cost "$2" --db "$TMP/live.db" --breakdown \
    >"$3" 2>"$TMP/err"
  local rc=$?
  [ $rc -eq 0 ] && ok || fail "simulate B=$1 --cost $2: exit $rc: $(head -c 300 "$TMP/err")"
}
# field FILE: TTFT mean (ms), TTFT max (evalscope's 99% row = the max for n <= 100, in s -> ms),
# median ITL (ms), launch/CPU stage-seconds per step (ms)
metrics() {
  awk '/^Mean TTFT \(ms\):/ {m = $4} /^99% / {x = $2 * 1000} /^Median ITL \(ms\):/ {itl = $4}
       /launch\/CPU overhead/ {l = $3} /^  events / {gsub(",", "", $4); st = $4}
       END { if (st > 0) printf "%.4f %.4f %.4f %.4f\n", m, x, itl, l * 1000 / st }' "$1"
}
within() { # within SIM MEAS TOL WHAT
  awk -v s="$1" -v m="$2" -v t="$3" 'BEGIN { e = (s - m) / m; exit !(e <= t && e >= -t) }' && ok \
    || fail "$4: simulated $1 vs measured $2 (tolerance $3)"
}

for B in 1 16 64; do
  sim $B calibrated "$TMP/cal$B"
  sim $B roofline "$TMP/rl$B"
  read -r c_ttft c_max c_itl c_host <<<"$(metrics "$TMP/cal$B")"
  read -r r_ttft r_max r_itl r_host <<<"$(metrics "$TMP/rl$B")"
  [ -n "$c_host" ] && [ -n "$r_host" ] && ok || fail "B=$B: could not read the figures: $(tail -5 "$TMP/cal$B")"

  cov=$(grep "^calibrated: " "$TMP/cal$B")
  pct=$(echo "$cov" | sed -n 's/^calibrated: \([0-9]*\)% of op time from measurements.*/\1/p')
  [ -n "$pct" ] && [ "$pct" -ge 95 ] && ok || fail "B=$B coverage below 95%: $cov"
  echo "$cov" | grep -q ", 0% roofline fallback" && ok || fail "B=$B: an op fell back to the roofline: $cov"
  src=$(grep "^calibrated from: " "$TMP/cal$B")
  echo "$src" | grep -q "attention 16+3," && ok || fail "B=$B: decode attention rows not the engine's path only: $src"
  echo "$src" | grep -q "from 1 profile run on NVIDIA H100 80GB HBM3" && ok || fail "B=$B provenance: $src"

  within "$c_ttft" "${TTFT_AVG[$B]}" 0.15 "B=$B calibrated TTFT avg"
  within "$c_max" "${TTFT_MAX[$B]}" 0.15 "B=$B calibrated TTFT max"
  awk -v c="$c_ttft" -v r="$r_ttft" -v m="${TTFT_AVG[$B]}" \
    'BEGIN { ec = c > m ? c - m : m - c; er = r > m ? r - m : m - r; exit !(3 * ec < er) }' && ok \
    || fail "B=$B: calibrated TTFT $c_ttft not 3x closer to ${TTFT_AVG[$B]} than the roofline's $r_ttft"
  if [ "$B" -le 16 ]; then
    gpu=$(awk -v i="$c_itl" -v h="$c_host" 'BEGIN { printf "%.4f", i - h }')
    within "$gpu" "${DECODE[$B]}" 0.10 "B=$B calibrated decode step less launch/host"
  fi
done

# same inputs, same bytes
sim 16 calibrated "$TMP/again16"
cmp -s "$TMP/cal16" "$TMP/again16" && ok || fail "two identical calibrated runs differ"

cli_done
