#!/usr/bin/env bash
# cli_cost_calib: `servesim simulate --cost calibrated --db F` end to end through the binary.
# Measurements go in as CSV (servesim db import), the run prints the coverage line naming what
# fell back; a database with no measurements gives the roofline's numbers exactly; the same
# inputs give the same bytes; a missing or bad database exits 2 with one line naming the file.
source "$(dirname "$0")/cli_lib.sh"
export SOURCE_DATE_EPOCH=1795000000

# Qwen3-30B-A3B GPTQ-Int4 at TP=2 on H100: qkv 2048 x 2560, o_proj 2048 x 2048 per rank; decode
# attention with 16/2 heads per rank; all-reduce over 2 ranks. No MoE rows: the MoE must fall
# back to the roofline and the line must say so. Latencies: fixed + bytes + FLOPs (made up).
{
  echo "kind,op,impl,dtype,hardware,model,m,n,k,batch,ctx_len,q_len,n_bytes,ranks,tp,lat_us_median,count"
  for M in 1 2 4 8 16 32 64 128 256 512 1024 2048 4096 8192; do
    awk -v M=$M 'BEGIN { K=2048; N=2560; printf "gemm,qkv,w4a16,int4,h100-sxm,qwen3-30b-a3b-gptq-int4,%d,%d,%d,,,,,,2,%.3f,20\n", M, N, K, 12 + K*N/2/2.9e6 + 2*M*K*N/6.1e8;
                         N=2048; printf "gemm,o_proj,w4a16,int4,h100-sxm,qwen3-30b-a3b-gptq-int4,%d,%d,%d,,,,,,2,%.3f,20\n", M, N, K, 12 + K*N/2/2.9e6 + 2*M*K*N/6.1e8 }'
  done
  for B in 1 4 16 64; do for C in 128 512 1024 2048 4096; do
    awk -v B=$B -v C=$C 'BEGIN { printf "attention,decode,paged,bf16,h100-sxm,qwen3-30b-a3b-gptq-int4,,,,%d,%d,1,,,2,%.3f,20\n", B, C, 9 + 0.3*B + B*C*1024/2.4e6 }'
  done; done
  for Q in 256 1024 2048 4096; do
    awk -v Q=$Q 'BEGIN { printf "attention,prefill,paged,bf16,h100-sxm,qwen3-30b-a3b-gptq-int4,,,,1,%d,%d,,,2,%.3f,20\n", Q, Q, 11 + 4*16*128*Q*(Q+1)/2/3.8e8 }'
  done
  for b in 4096 16384 65536 262144 1048576 4194304 16777216 67108864; do
    awk -v b=$b 'BEGIN { printf "allreduce,allreduce,nccl,bf16,h100-sxm,,,,,,,,%d,2,2,%.3f,20\n", b, 7 + b/1.5e5 }'
  done
} >"$TMP/cal.csv"
"$BIN" db import --db "$TMP/cal.db" "$TMP/cal.csv" >"$TMP/out" 2>&1 && ok || fail "import: $(cat "$TMP/out")"

SIM=(simulate --model qwen3-30b-a3b-gptq-int4 --hardware h100-sxm -tp 2 --dataset random --number 24
     --parallel 6 --min-prompt-length 512 --max-prompt-length 2048 --min-tokens 64 --max-tokens 128 --seed 5)
"$BIN" "${SIM[@]}" --cost calibrated --db "$TMP/cal.db" >"$TMP/a" 2>"$TMP/err"; rc=$?
[ $rc -eq 0 ] && ok || fail "calibrated run: exit $rc: $(cat "$TMP/err")"
grep -q "cost model calibrated" "$TMP/a" && ok || fail "header lacks the cost model: $(head -2 "$TMP/a")"
line=$(grep "^calibrated: " "$TMP/a")
[ -n "$line" ] && ok || fail "no coverage line in: $(tail -3 "$TMP/a")"
echo "$line" | grep -qE "^calibrated: [0-9<>]+% of op time from measurements" && ok || fail "coverage line: $line"
echo "$line" | grep -q "moe [0-9<>]*%: no int4 moe rows for hidden 2048, expert width 384 per rank" && ok \
  || fail "MoE fallback not named: $line"
echo "$line" | grep -q "no allreduce rows" && fail "all-reduce rows were imported: $line" || ok
grep -qE "^calibrated from: 60 measurements \(gemm 28, moe 0, attention 20\+4, allreduce 8, step 0; 0 unused\).*, commit " "$TMP/a" \
  && ok || fail "provenance line: $(grep '^calibrated from' "$TMP/a")"

# deterministic: the same inputs give the same bytes (the run is stored too, in its own copy)
cp "$TMP/cal.db" "$TMP/cal2.db"
"$BIN" "${SIM[@]}" --cost calibrated --db "$TMP/cal2.db" >"$TMP/b" 2>&1
cmp -s "$TMP/a" "$TMP/b" && ok || fail "two calibrated runs differ: $(diff "$TMP/a" "$TMP/b" | head -5)"

# no measurements: the roofline's numbers, 100% fallback
"$BIN" db init --db "$TMP/empty.db" >/dev/null 2>&1
"$BIN" db init --db "$TMP/rl.db" >/dev/null 2>&1
"$BIN" "${SIM[@]}" --cost calibrated --db "$TMP/empty.db" >"$TMP/c" 2>&1 && ok || fail "empty-db run: $(cat "$TMP/c")"
"$BIN" "${SIM[@]}" --cost roofline --db "$TMP/rl.db" >"$TMP/r" 2>&1 && ok || fail "roofline run: $(cat "$TMP/r")"
grep -q "100% roofline fallback" "$TMP/c" && ok || fail "empty db line: $(grep '^calibrated' "$TMP/c")"
diff <(grep -v -e '^calibrated: ' -e '^calibrated from: ' -e '^deployment: ' "$TMP/c") <(grep -v '^deployment: ' "$TMP/r") >"$TMP/d" \
  && ok || fail "empty database differs from the roofline: $(head -6 "$TMP/d")"
cmp -s "$TMP/a" "$TMP/r" && fail "calibrated run equals the roofline run" || ok

# bad input
expect_err 2 "nonexistent.db: no such database" "$BIN" "${SIM[@]}" --cost calibrated --db "$TMP/nonexistent.db"
[ ! -e "$TMP/nonexistent.db" ] && ok || fail "a missing database was created"
printf 'kind,op,dtype,hardware,m,n,k,lat_us_median,count\ngemm,qkv,int4,h100-sxm,1,2560,2048,0,5\n' >"$TMP/zero.csv"
"$BIN" db import --db "$TMP/zero.db" "$TMP/zero.csv" >/dev/null 2>&1
expect_err 2 "zero.db: measurement 1 \(gemm qkv\): latency must be > 0" "$BIN" "${SIM[@]}" --cost calibrated --db "$TMP/zero.db"
expect_err 2 "--cost 'calibrate'" "$BIN" "${SIM[@]}" --cost calibrate --db "$TMP/cal.db"

cli_done
