#!/usr/bin/env bash
# cli_plan: `servesim plan` through the binary: the seed's rejection in the table, identical
# reports for 1 and 2 threads, the same ranked table from `mpirun -n 2` as from one process
# (MPI builds with mpirun present), agreement with `servesim bench` on the same layout, the
# SQLite rows, and one clear stderr line with exit 2 for each kind of bad input.
source "$(dirname "$0")/cli_lib.sh"
export SERVESIM_NO_PROGRESS=1

SEED=(--model qwen3-235b-a22b-gptq-int4 --hardware a100-40g-pcie --gpus 8)
# A short closed loop keeps the test quick; the shape of the seed's run (1024 in).
LOAD=(--dataset random --parallel 4 --number 8 --min-tokens 32 --max-tokens 32)
SLO=(--slo ttft_p99=3s,tpot_p99=80ms --gpu-hour-cost 2)

# 1. the seed: TP=8 without expert parallel is rejected with vLLM's error; EP=8 is ranked
"$BIN" plan "${SEED[@]}" "${LOAD[@]}" "${SLO[@]}" --threads 1 --top 0 >"$TMP/t1" 2>"$TMP/e1"
rc=$?
[ $rc -eq 0 ] || [ $rc -eq 1 ] && ok || fail "plan exit $rc: $(cat "$TMP/e1")"
awk '/^rejected/{r=1} r && /TP8xPP1xDP1 /{getline; print}' "$TMP/t1" | grep -q "size_k must divisible by BLOCK_SIZE_K" \
  && ok || fail "TP8 without EP not rejected with BLOCK_SIZE_K: $(cat "$TMP/t1")"
grep -qE "^ +[0-9]+ +a100-40g-pcie +8 +TP8xPP1xDP1 EP " "$TMP/t1" && ok || fail "EP=8 not ranked"
for sect in "best by objective:" "Pareto frontier" "fewest GPUs" "rejected ("; do
  grep -q "$sect" "$TMP/t1" && ok || fail "no '$sect' section"
done

# 2. thread-count independence, table and JSON
"$BIN" plan "${SEED[@]}" "${LOAD[@]}" "${SLO[@]}" --threads 2 --top 0 >"$TMP/t2" 2>/dev/null
cmp -s "$TMP/t1" "$TMP/t2" && ok || fail "1 vs 2 threads differ: $(diff "$TMP/t1" "$TMP/t2" | head -5)"
"$BIN" plan "${SEED[@]}" "${LOAD[@]}" "${SLO[@]}" --threads 1 --json >"$TMP/j1" 2>/dev/null
"$BIN" plan "${SEED[@]}" "${LOAD[@]}" "${SLO[@]}" --threads 3 --json >"$TMP/j3" 2>/dev/null
cmp -s "$TMP/j1" "$TMP/j3" && ok || fail "JSON 1 vs 3 threads differ"
grep -q '"pareto"' "$TMP/j1" && grep -q '"max_load"' "$TMP/j1" && ok || fail "JSON lacks pareto/max_load"

# 3. MPI: two ranks give the same table as one process
if "$BIN" plan --help | grep -q "MPI: built in" && command -v mpirun >/dev/null; then
  MPIRUN=(mpirun -n 2 --oversubscribe)
  [ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
  # OpenMPI's own allocations are not ours to leak-check under ASan
  ASAN_OPTIONS=detect_leaks=0 "${MPIRUN[@]}" "$BIN" plan "${SEED[@]}" "${LOAD[@]}" "${SLO[@]}" \
    --threads 1 --top 0 >"$TMP/tm" 2>"$TMP/em"
  grep -q "x 2 rank(s)" "$TMP/em" && ok || fail "mpirun -n 2 did not run 2 ranks: $(cat "$TMP/em")"
  cmp -s "$TMP/t1" "$TMP/tm" && ok || fail "mpirun -n 2 table differs: $(diff "$TMP/t1" "$TMP/tm" | head -5)"
else
  echo "note: no MPI build or no mpirun: MPI rank independence not checked" >&2
  mpi_skipped=1
fi

# 4. the same layout gives bench's numbers (same workload conventions, same cost model)
"$BIN" plan "${SEED[@]}" -tp 4 -pp 2 --expert-parallel off "${LOAD[@]}" --json >"$TMP/p" 2>/dev/null
"$BIN" bench --model qwen3-235b-a22b-gptq-int4 --hardware a100-40g-pcie -tp 4 -pp 2 "${LOAD[@]}" --json >"$TMP/b" 2>/dev/null
p=$(grep -m1 '"output_tok_s"' "$TMP/p" | tr -dc '0-9.\n')
b=$(grep -m1 '"Output token throughput (tok/s)"' "$TMP/b" | sed 's/.*: *//' | tr -dc '0-9.\n')
[ -n "$p" ] && [ -n "$b" ] && [ "$(printf '%.4f' "$p")" = "$(printf '%.4f' "$b")" ] && ok \
  || fail "plan TP4xPP2 output tok/s '$p' vs bench '$b'"

# 5. rows in the database
"$BIN" plan "${SEED[@]}" "${LOAD[@]}" --db "$TMP/p.db" >/dev/null 2>"$TMP/e"
[ $? -eq 0 ] && ok || fail "plan --db: $(cat "$TMP/e")"
if command -v sqlite3 >/dev/null; then
  n_runs=$(sqlite3 "$TMP/p.db" "SELECT COUNT(*) FROM runs WHERE label = 'plan'")
  n_ok=$(grep -c "a100-40g-pcie +8 " "$TMP/t1")
  [ "$n_runs" -gt 0 ] && ok || fail "no plan runs in the database"
  sqlite3 "$TMP/p.db" "SELECT fails FROM layouts WHERE tp = 8 AND ep = 1 AND ok = 0" | grep -q BLOCK_SIZE_K \
    && ok || fail "rejected TP8 layout row missing"
  sqlite3 "$TMP/p.db" "SELECT COUNT(*) FROM run_metrics WHERE key = 'plan: rank'" | grep -qx "$n_runs" \
    && ok || fail "plan: rank metric missing"
fi

# 6. an SLO nobody meets exits 1 and says so
"$BIN" plan "${SEED[@]}" "${LOAD[@]}" --slo ttft_p99=1ms >"$TMP/out" 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "no candidate meets the SLO" "$TMP/err" && grep -q "none of the candidates meets" "$TMP/out" \
  && ok || fail "impossible SLO: $(cat "$TMP/err")"

# 7. the seed's acceptance between its two working layouts (the answer rests on the roofline
# cost model; bench agreement above is the planner's own invariant): at concurrency 1 EP=8 has
# the lowest TPOT, at 100 TP=4 x PP=2 the highest throughput, and TP=8 alone is rejected
SEEDL=(--model qwen3-235b-a22b-gptq-int4 --hardware a100-40g-pcie --layout tp=8,ep --layout tp=4,pp=2 --layout tp=8)
"$BIN" plan "${SEEDL[@]}" --dataset random --parallel 1 --number 10 --objective tpot >"$TMP/c1" 2>/dev/null
grep -qE "^ +1 +a100-40g-pcie +8 +TP8xPP1xDP1 EP " "$TMP/c1" && ok || fail "concurrency 1: EP=8 not first by TPOT: $(head -9 "$TMP/c1")"
grep -q "candidates: 3 (2 feasible, 1 rejected)" "$TMP/c1" && ok || fail "seed layouts: $(head -4 "$TMP/c1")"
"$BIN" plan "${SEEDL[@]}" --dataset random --parallel 100 --number 200 >"$TMP/c100" 2>/dev/null
grep -qE "^ +1 +a100-40g-pcie +8 +TP4xPP2xDP1 " "$TMP/c100" && ok || fail "concurrency 100: TP4xPP2 not first: $(head -9 "$TMP/c100")"

# 8. bad input: one line, exit 2
expect_err 2 "unknown flag '--bogus'" "$BIN" plan "${SEED[@]}" "${LOAD[@]}" --bogus
expect_err 2 "--model is required" "$BIN" plan --hardware a100-40g-pcie --gpus 8 "${LOAD[@]}"
expect_err 2 "--gpus" "$BIN" plan --model qwen3-235b-a22b-gptq-int4 --hardware a100-40g-pcie --gpus 8-2 "${LOAD[@]}"
expect_err 2 "--hardware" "$BIN" plan --model qwen3-235b-a22b-gptq-int4 --hardware nosuchcard --gpus 8 "${LOAD[@]}"
expect_err 2 "--slo" "$BIN" plan "${SEED[@]}" "${LOAD[@]}" --slo ttft=2s
expect_err 2 "--max-num-seqs" "$BIN" plan "${SEED[@]}" "${LOAD[@]}" --max-num-seqs 128,abc
expect_err 2 "--cuda-graphs" "$BIN" plan "${SEED[@]}" "${LOAD[@]}" --cuda-graphs maybe
expect_err 2 "no workload" "$BIN" plan "${SEED[@]}"
expect_err 2 "nosuch.csv" "$BIN" plan "${SEED[@]}" --trace "$TMP/nosuch.csv"
printf 'arrival_s,input_tokens,output_tokens\n0.0,10,5\n0.5,abc,5\n' >"$TMP/bad.csv"
expect_err 2 "bad.csv:3" "$BIN" plan "${SEED[@]}" --trace "$TMP/bad.csv"
expect_err 2 "needs --gpu-hour-cost" "$BIN" plan "${SEED[@]}" "${LOAD[@]}" --objective cost
expect_err 2 "--threads" "$BIN" plan "${SEED[@]}" "${LOAD[@]}" --threads 0
expect_err 2 "--speedup applies to --trace only" "$BIN" plan "${SEED[@]}" "${LOAD[@]}" --speedup 2
expect_err 2 "no layout of the given GPU counts" "$BIN" plan "${SEED[@]}" "${LOAD[@]}" -tp 3
expect_err 2 "--layout 'tp=4,xx=2'" "$BIN" plan "${SEED[@]}" "${LOAD[@]}" --layout tp=4,xx=2

cli_done || exit 1
[ "${mpi_skipped:-0}" -eq 1 ] && exit 77
exit 0
