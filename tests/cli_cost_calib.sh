#!/usr/bin/env bash
# cli_cost_calib: `servesim simulate --cost calibrated --db F` end to end through the binary.
# Measurements go in as CSV (servesim db import), the run prints the coverage line naming what
# fell back; a database with no measurements gives the roofline's numbers exactly; the same
# inputs give the same bytes; a missing or bad database exits 2 with one line naming the file.
set -u
BIN=${SERVESIM_BIN:?SERVESIM_BIN not set}
T=$(mktemp -d /tmp/servesim_cli_cost_calib.XXXXXX)
trap 'rm -rf "$T"' EXIT
export SOURCE_DATE_EPOCH=1795000000
fails=0; passes=0
ok()   { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

expect_err() {
  local code=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local lines; lines=$(wc -l <"$T/err")
  if [ "$rc" -ne "$code" ]; then fail "$*: exit $rc, want $code ($(cat "$T/err"))"; return; fi
  if [ "$lines" -ne 1 ]; then fail "$*: $lines stderr lines, want 1: $(cat "$T/err")"; return; fi
  if ! grep -qE -- "$pat" "$T/err"; then fail "$*: stderr '$(cat "$T/err")' lacks /$pat/"; return; fi
  ok
}

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
} >"$T/cal.csv"
"$BIN" db import --db "$T/cal.db" "$T/cal.csv" >"$T/out" 2>&1 && ok || fail "import: $(cat "$T/out")"

SIM=(simulate --model qwen3-30b-a3b-gptq-int4 --hardware h100-sxm -tp 2 --dataset random --number 24
     --parallel 6 --min-prompt-length 512 --max-prompt-length 2048 --min-tokens 64 --max-tokens 128 --seed 5)
"$BIN" "${SIM[@]}" --cost calibrated --db "$T/cal.db" >"$T/a" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok || fail "calibrated run: exit $rc: $(cat "$T/err")"
grep -q "cost model calibrated" "$T/a" && ok || fail "header lacks the cost model: $(head -2 "$T/a")"
line=$(grep "^calibrated: " "$T/a")
[ -n "$line" ] && ok || fail "no coverage line in: $(tail -3 "$T/a")"
echo "$line" | grep -qE "^calibrated: [0-9<>]+% of op time from measurements" && ok || fail "coverage line: $line"
echo "$line" | grep -q "moe [0-9<>]*%: no int4 moe rows for hidden 2048, expert width 384 per rank" && ok \
  || fail "MoE fallback not named: $line"
echo "$line" | grep -q "no allreduce rows" && fail "all-reduce rows were imported: $line" || ok
grep -qE "^calibrated from: 60 measurements \(gemm 28, moe 0, attention 20\+4, allreduce 8, step 0; 0 unused\).*, commit " "$T/a" \
  && ok || fail "provenance line: $(grep '^calibrated from' "$T/a")"

# deterministic: the same inputs give the same bytes (the run is stored too, in its own copy)
cp "$T/cal.db" "$T/cal2.db"
"$BIN" "${SIM[@]}" --cost calibrated --db "$T/cal2.db" >"$T/b" 2>&1
cmp -s "$T/a" "$T/b" && ok || fail "two calibrated runs differ: $(diff "$T/a" "$T/b" | head -5)"

# no measurements: the roofline's numbers, 100% fallback
"$BIN" db init --db "$T/empty.db" >/dev/null 2>&1
"$BIN" db init --db "$T/rl.db" >/dev/null 2>&1
"$BIN" "${SIM[@]}" --cost calibrated --db "$T/empty.db" >"$T/c" 2>&1 && ok || fail "empty-db run: $(cat "$T/c")"
"$BIN" "${SIM[@]}" --cost roofline --db "$T/rl.db" >"$T/r" 2>&1 && ok || fail "roofline run: $(cat "$T/r")"
grep -q "100% roofline fallback" "$T/c" && ok || fail "empty db line: $(grep '^calibrated' "$T/c")"
diff <(grep -v -e '^calibrated: ' -e '^calibrated from: ' -e '^deployment: ' "$T/c") <(grep -v '^deployment: ' "$T/r") >"$T/d" \
  && ok || fail "empty database differs from the roofline: $(head -6 "$T/d")"
cmp -s "$T/a" "$T/r" && fail "calibrated run equals the roofline run" || ok

# bad input
expect_err 2 "nonexistent.db: no such database" "$BIN" "${SIM[@]}" --cost calibrated --db "$T/nonexistent.db"
[ ! -e "$T/nonexistent.db" ] && ok || fail "a missing database was created"
printf 'kind,op,dtype,hardware,m,n,k,lat_us_median,count\ngemm,qkv,int4,h100-sxm,1,2560,2048,0,5\n' >"$T/zero.csv"
"$BIN" db import --db "$T/zero.db" "$T/zero.csv" >/dev/null 2>&1
expect_err 2 "zero.db: measurement 1 \(gemm qkv\): latency must be > 0" "$BIN" "${SIM[@]}" --cost calibrated --db "$T/zero.db"
expect_err 2 "--cost 'calibrate'" "$BIN" "${SIM[@]}" --cost calibrate --db "$T/cal.db"

echo "cli_cost_calib: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
