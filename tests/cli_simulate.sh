#!/usr/bin/env bash
# cli_simulate: `servesim simulate` and `servesim bench` end to end: evalscope JSON (one object per
# concurrency, its 15 keys in order), trace replay, the seed's two layouts, byte-identical JSON
# and CSV for the same seed, the database rows, and bad input exiting 2 (1 for an impossible
# layout) with one line naming the flag or file.
source "$(dirname "$0")/cli_lib.sh"

M="--model qwen3-235b-a22b-gptq-int4 --hardware a100-40g-pcie"
EP="-tp 8 --enable-expert-parallel"
RAND="--dataset random --min-prompt-length 1024 --max-prompt-length 1024 --min-tokens 64 --max-tokens 64"

# 1. bench --json: a JSON array, one evalscope summary per concurrency, keys in evalscope's order
run 0 bench $M $EP $RAND --parallel 1 4 --number 2 8 --json
python3 - "$TMP/out" <<'PY' || fail "bench --json is not the evalscope array"
import json, sys
a = json.load(open(sys.argv[1]))
keys = ["Time taken for tests (s)", "Number of concurrency", "Total requests", "Succeed requests",
        "Failed requests", "Output token throughput (tok/s)", "Total token throughput (tok/s)",
        "Request throughput (req/s)", "Average latency (s)", "Average time to first token (s)",
        "Average time per output token (s)", "Average input tokens per request",
        "Average output tokens per request", "Average package latency (s)", "Average package per request"]
assert isinstance(a, list) and len(a) == 2, a
for obj, conc, n in zip(a, [1, 4], [2, 8]):
    assert list(obj.keys()) == keys, list(obj.keys())
    assert obj["Number of concurrency"] == conc and obj["Total requests"] == n and obj["Succeed requests"] == n
    assert obj["Average output tokens per request"] == 64.0
    # evalscope random prompts are decoded without re-encoding: +5.3% by default
    assert obj["Average input tokens per request"] == 1078.0, obj["Average input tokens per request"]
    # output throughput = output tokens / time taken (rounded to 4 decimals)
    assert abs(obj["Output token throughput (tok/s)"] - 64 * n / obj["Time taken for tests (s)"]) < 0.01
    assert obj["Average package per request"] == 62.0
assert a[1]["Average time per output token (s)"] >= a[0]["Average time per output token (s)"]
PY

# 2. the seed's two layouts side by side: a comparison table naming both
run 0 bench $M $RAND --parallel 1 8 --number 2 8 --layout "tp=8,ep" --layout "tp=4,pp=2"
has "Comparison" out
has "tp=4,pp=2" out
has "tp=8,ep" out
# several layouts in JSON: one {"layout", "results"} object per layout
run 0 bench $M $RAND --parallel 1 --number 2 --layout "tp=8,ep" --layout "tp=4,pp=2" --json
python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); assert [x["layout"] for x in a]==["tp=8,ep","tp=4,pp=2"] and len(a[0]["results"])==1' "$TMP/out" \
  || fail "multi-layout bench --json"

# bench writes one requests CSV per layout and concurrency
run 0 bench $M $RAND --parallel 1 2 --number 1 2 --layout "tp=8,ep" --requests-csv "$TMP/r.csv"
[ -f "$TMP/r.csv.tp8-ep.p1.csv" ] && [ -f "$TMP/r.csv.tp8-ep.p2.csv" ] || fail "bench per-run request CSVs missing: $(ls "$TMP")"

# 3. determinism: same inputs and seed, byte-identical JSON and CSV; another seed differs
A="$M $EP --dataset random --min-prompt-length 100 --max-prompt-length 2000 --min-tokens 10 --max-tokens 200 --number 40 --parallel 8"
run 0 simulate $A --seed 5 --json --requests-csv "$TMP/a.csv"; cp "$TMP/out" "$TMP/a.json"
run 0 simulate $A --seed 5 --json --requests-csv "$TMP/b.csv"; cp "$TMP/out" "$TMP/b.json"
cmp -s "$TMP/a.json" "$TMP/b.json" || fail "simulate --json differs between identical runs"
cmp -s "$TMP/a.csv" "$TMP/b.csv" || fail "--requests-csv differs between identical runs"
run 0 simulate $A --seed 6 --json
cmp -s "$TMP/a.json" "$TMP/out" && fail "a different --seed gave identical output"
# --seed reads any 64-bit value, decimal or 0x hex, as plan and trace gen do
run 0 simulate $A --seed 0x5 --json
cmp -s "$TMP/a.json" "$TMP/out" && ok || fail "--seed 0x5 differs from --seed 5"
run 0 simulate $A --seed 18446744073709551615 --json
[ "$(wc -l <"$TMP/a.csv")" -eq 41 ] || fail "requests CSV should have a header and 40 rows"
head -1 "$TMP/a.csv" | grep -q '^idx,replica,ok,in_tok,out_tok' || fail "requests CSV header"

# 4. trace replay (open loop) from a canonical CSV, with goodput and the breakdown
printf 'arrival_s,input_tokens,output_tokens\n0.000000000,500,20\n0.100000000,800,30\n0.250000000,300,5\n2.000000000,1200,40\n' >"$TMP/t.csv"
run 0 simulate $M -tp 4 -pp 2 --trace "$TMP/t.csv" --breakdown --slo ttft=2s,tpot=200ms
has "Succeed requests                  |           4" out
has "Request goodput (req/s)" out
has "pipeline bubble" out
has "Where the time goes" out
# the same trace with --parallel is a closed loop
run 0 simulate $M $EP --trace "$TMP/t.csv" --parallel 2 --json
python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); assert a["summary"]["Number of concurrency"]==2' "$TMP/out" \
  || fail "closed-loop trace replay"

# 5. constant cost model: one request, exact latency. 100 prompt tokens, 3 output tokens,
# step 10 ms + 0.01 ms/token: TTFT = 10 + 1 = 11 ms; 2 decodes of 10.01 ms -> 31.02 ms
run 0 simulate $M $EP --cost constant --constant-step-us 10000 --constant-token-us 10 \
  --dataset random --min-prompt-length 100 --max-prompt-length 100 --min-tokens 3 --max-tokens 3 \
  --prompt-inflation 0 --number 1 --parallel 1 --json
python3 - "$TMP/out" <<'PY' || fail "constant-model latency"
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
assert s["Average time to first token (s)"] == 0.011, s
assert s["Average latency (s)"] == 0.031, s   # 0.03102 rounded to 4 decimals
PY

# 6. the database: a run with its requests
run 0 simulate $A --seed 5 --db "$TMP/s.db"
run 0 db list requests --db "$TMP/s.db" --limit 0
[ "$(grep -c '^ *[0-9]' "$TMP/out")" -ge 40 ] || fail "40 request rows expected in the database"
run 0 db list runs --db "$TMP/s.db"
has "simulated" out

# 7. bad input: exit 2, one line naming the flag or file
run 2 simulate $M $EP --dataset random --number 2 --parallel 1 --bogus; one_line; has "--bogus" err
run 2 simulate $M $EP --trace "$TMP/missing.csv"; one_line; has "missing.csv" err
run 2 simulate $M $EP --dataset random --number 2 --parallel 1 --slo ttft=fast; one_line; has "--slo" err
run 2 bench $M $EP --dataset random --parallel 1 10 --number 5; one_line; has "--number" err
run 2 simulate $M $EP --dataset random --number 0 --parallel 1; one_line; has "--number" err
run 2 simulate $M $EP; one_line; has "workload" err
run 2 simulate --hardware a100-40g-pcie $EP --dataset random --number 1; one_line; has "--model" err
run 2 bench $M --layout "tp=4,qq=2" $RAND --parallel 1 --number 1; one_line; has "qq" err
run 2 bench $M -tp 8 --layout "tp=4,pp=2" $RAND --parallel 1 --number 1; one_line; has "not both" err
run 2 simulate $M -tp 4096 -pp 4096 $RAND --parallel 1 --number 1; one_line; has "16777216 GPUs, more than 4096" err
# more clients than requests: only as many start as there are requests (the event queue was
# sized by --parallel, 2^31 of them here)
run 0 simulate $M $EP $RAND --parallel 2147483647 --number 2
run 2 simulate $M $EP --cost magic --dataset random --number 1; one_line; has "--cost" err
run 2 simulate $M $EP --poisson 2 --number 10 --parallel 4; one_line; has "--parallel" err
run 2 simulate $M $EP --poisson 0 --number 10; one_line; has "--poisson" err
# open-loop Poisson with lengths resampled from a trace file
run 0 simulate $M $EP --poisson 50 --number 30 --lengths-from "$TMP/t.csv" --json
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; assert s["Total requests"]==30 and s["Succeed requests"]==30 and s["Number of concurrency"]==0, s' "$TMP/out" \
  || fail "poisson run"
printf 'arrival_s,input_tokens,output_tokens\n0.0,abc,5\n' >"$TMP/bad.csv"
run 2 simulate $M $EP --trace "$TMP/bad.csv"; one_line; has "bad.csv:2:" err
# --on-bad-row skip: the good rows run, and the skipped row is reported, not silently dropped
printf 'arrival_s,input_tokens,output_tokens\n0.0,100,5\n0.5,abc,5\n1.0,100,5\n' >"$TMP/bad2.csv"
run 0 simulate $M $EP --trace "$TMP/bad2.csv" --on-bad-row skip --json; has "bad2.csv:3:" err
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; assert s["Total requests"]==2, s' "$TMP/out" \
  || fail "skip mode should run the 2 good rows"
run 2 simulate $M $EP --trace "$TMP/bad2.csv" --on-bad-row maybe; one_line; has "--on-bad-row" err
# an impossible layout: exit 1 naming vLLM's error
run 1 simulate $M -tp 8 --dataset random --number 1 --parallel 1
has "size_k must divisible by BLOCK_SIZE_K" err

cli_done
