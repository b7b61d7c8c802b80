#!/usr/bin/env bash
# cli_acceptance: bench/acceptance.py, issue 5's acceptance lines read from a bench_kernels run.
# The tables are written here in bench_kernels' layout (the columns it prints):
# - a run that meets every line: exit 0, each line "met", the card named;
# - one criterion broken at a time: a point over cuBLAS at M <= 256 (and one past 256, which
#   does not count), a ratio over 1.5x at M <= 16 (and one at M = 32, which does not), the MoE
#   over 2x at 8 tokens, a FAIL row, a failed test run: exit 1 with the point named;
# - a partial run (no MoE table, a TP=1 shape missing): "not in the table", exit 1;
# - bad input (no such file, a row that does not parse, no GEMM table, bad usage): one stderr
#   line naming the file or line, exit 2.
source "$(dirname "$0")/cli_lib.sh"
command -v python3 >/dev/null || { echo "cli_acceptance: no python3" >&2; exit 77; }
ACC="$(dirname "$0")/../bench/acceptance.py"
RUN_BIN=python3

# gemm_row SHAPE TP M US RATIO CUBLAS: one GEMM table row (the other columns as bench_kernels
# fills them; only these are read)
gemm_row() { printf '| %-8s | %d | %5d | %5d | %4d | %8.1f | %6d | %5.2f | %7.1f | %8.1f | %5.2f | %6.1f | 1.0e-08 |\n' \
  "$1" "$2" 4096 4096 "$3" "$4" 1000 "$5" 1.0 "$6" 1.00 1.0; }
# a run that meets every line: the four TP=1 shapes at M = 1, 16 within 1.5x, every point under
# cuBLAS, a TP=2 slice too, and the MoE at 8 tokens 1.4x
write_good() {
  {
    echo "device: NVIDIA H100 80GB HBM3, 132 SMs, L2 50 MiB, driver API 13000, runtime 13000"
    echo
    echo "| shape | TP | K | N | M | w4a16 us | GB/s | ratio to floor | floor us | cuBLAS bf16 us | speedup | TFLOP/s | nmse |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for s in qkv o_proj gate_up down; do
      gemm_row "$s" 1 1 5.0 1.40 20.0
      gemm_row "$s" 1 16 6.0 1.48 20.0
      gemm_row "$s" 1 256 20.0 9.0 20.0
      gemm_row "$s" 1 1024 90.0 30.0 80.0
    done
    gemm_row qkv 2 64 9.0 4.0 12.0
    echo
    echo "| tokens | experts hit | us | GB/s | ratio to floor | floor us (hit experts' weights) | check |"
    echo "|---|---|---|---|---|---|---|"
    echo "| 1 | 8.0 | 43.2 | 1577 | 2.34 | 18.5 | nmse 2.8e-05 |"
    echo "| 8 | 52.0 | 176.0 | 2448 | 1.40 | 125.7 | nmse 3.0e-05 |"
    echo
    echo "validation: all configurations passed"
  } >"$1"
}
write_good "$TMP/good.txt"
printf 'PASS gpu_kern_w4a16\nPASS gpu_kern_moe\n' >"$TMP/tests.txt"
run 0 "$ACC" "$TMP/good.txt" "$TMP/tests.txt"
has "NVIDIA H100 80GB HBM3" out
has "kernel tests: 2 passed, 0 failed -- met" out
has "worst 1.48x (qkv M=16); M=1: qkv 1.40x, o_proj 1.40x, gate_up 1.40x, down 1.40x -- met" out
has "no slower than cuBLAS bf16 at M <= 256: 13 of 13 points -- met" out
has "fused MoE at 8 tokens within 2.0x of the hit experts' weights: 1.40x -- met" out
has "'all configurations passed' -- met" out
[ "$(grep -c -- '-- met' "$TMP/out")" -eq 5 ] || fail "not five met lines: $(cat "$TMP/out")"
run 0 "$ACC" "$TMP/good.txt" # (no tests file: that line left out)
grep -q "kernel tests" "$TMP/out" && fail "a kernel tests line without TESTS_TXT"

# one criterion broken at a time
sed 's/^| qkv      | 2 |  4096 |  4096 |   64 |      9.0 /| qkv      | 2 |  4096 |  4096 |   64 |     12.1 /' "$TMP/good.txt" >"$TMP/slow.txt"
run 1 "$ACC" "$TMP/slow.txt"
has "12 of 13 points; over: qkv TP=2 M=64 12.1 against 12.0 us -- not met" out
sed 's/^| down     | 1 |  4096 |  4096 |   16 |      6.0 |   1000 |  1.48/| down     | 1 |  4096 |  4096 |   16 |      6.0 |   1000 |  1.51/' \
  "$TMP/good.txt" >"$TMP/floor.txt"
run 1 "$ACC" "$TMP/floor.txt"
has "worst 1.51x (down M=16)" out
has "-- not met" out
{ cat "$TMP/good.txt"; echo "| shape | TP | K | N | M | w4a16 us |"; gemm_row down 1 32 6.0 9.9 5.0; gemm_row down 1 512 60.0 9.9 50.0; } \
  >"$TMP/past.txt" # (M = 32 is past the floor line, M = 512 past the cuBLAS line: both over, neither counts)
run 1 "$ACC" "$TMP/past.txt" # (32 <= 256: over cuBLAS there)
has "over: down TP=1 M=32 6.0 against 5.0 us" out
{ cat "$TMP/good.txt"; echo "| shape | TP | K | N | M | w4a16 us |"; gemm_row down 1 512 60.0 9.9 50.0; } >"$TMP/past2.txt"
run 0 "$ACC" "$TMP/past2.txt"
sed 's/^| 8 | 52.0 | 176.0 | 2448 | 1.40 /| 8 | 52.0 | 276.0 | 1561 | 2.20 /' "$TMP/good.txt" >"$TMP/moe.txt"
run 1 "$ACC" "$TMP/moe.txt"
has "fused MoE at 8 tokens within 2.0x of the hit experts' weights: 2.20x -- not met" out
{ cat "$TMP/good.txt"; echo "| shape | TP | K | N | M | w4a16 us |";
  echo "| o_proj   | 4 |  2048 |  4096 |  128 | FAIL: nmse 0.31 vs cuBLAS on the dequantised weights |"; } >"$TMP/fail.txt"
sed -i 's/all configurations passed/SOME CONFIGURATIONS FAILED/' "$TMP/fail.txt"
run 1 "$ACC" "$TMP/fail.txt"
has "failed rows: 1 (o_proj TP=4 M=128) -- not met" out
printf 'PASS gpu_kern_w4a16\nFAIL gpu_kern_moe_wgmma64\n' >"$TMP/tests_bad.txt"
run 1 "$ACC" "$TMP/good.txt" "$TMP/tests_bad.txt"
has "kernel tests: 1 passed, 1 failed; failed: gpu_kern_moe_wgmma64 -- not met" out

# a partial run
sed '/^| tokens/,$d' "$TMP/good.txt" >"$TMP/nomoe.txt"
run 1 "$ACC" "$TMP/nomoe.txt"
has "fused MoE at 8 tokens within 2.0x of the hit experts' weights: not in the table" out
has "no validation line" out
grep -v '^| down ' "$TMP/good.txt" >"$TMP/nodown.txt"
run 1 "$ACC" "$TMP/nodown.txt"
has "not in the table (down at TP=1)" out

# bad input
expect_err 2 "acceptance: $TMP/none.txt: No such file" python3 "$ACC" "$TMP/none.txt"
sed 's/^| gate_up  | 1 |  4096 |  4096 |    1 |      5.0 /| gate_up  | 1 |  4096 |  4096 |    1 |      x.y /' "$TMP/good.txt" >"$TMP/bad.txt"
line=$(grep -n '^| gate_up  | 1 |  4096 |  4096 |    1 |' "$TMP/bad.txt" | cut -d: -f1)
expect_err 2 "acceptance: $TMP/bad.txt:$line: a gemm table row that does not parse" python3 "$ACC" "$TMP/bad.txt"
echo "no table here" >"$TMP/empty.txt"
expect_err 2 "no W4A16 GEMM table" python3 "$ACC" "$TMP/empty.txt"
expect_err 2 "usage: bench/acceptance.py" python3 "$ACC"
expect_err 2 "usage: bench/acceptance.py" python3 "$ACC" --help
expect_err 2 "acceptance: $TMP/none2.txt: No such file" python3 "$ACC" "$TMP/good.txt" "$TMP/none2.txt"
cli_done
