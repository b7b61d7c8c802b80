#!/usr/bin/env bash
# cli_workload: how simulate and bench get their workload. The description stored with each run
# (runs.workload) names the workload as given (seed digits intact, "open loop" for a replay), and
# bench reads a --trace file once: its dropped rows are reported once however many layouts run,
# and a malformed row stops it before any output.
source "$(dirname "$0")/cli_lib.sh"
SHARED=${SERVESIM_SHARED:-$(dirname "$0")/../../shared}
M="--model qwen3-235b-a22b-gptq-int4 --hardware a100-40g-pcie --gpus 8"
TP4PP2="-tp 4 -pp 2"

printf 'arrival_s,input_tokens,output_tokens\n0.000000000,10,10\n0.100000000,20,10\n' >"$TMP/good.csv"
printf 'arrival_s,input_tokens,output_tokens\n0.000000000,10,10\n0.100000000,abc,10\n' >"$TMP/bad.csv"

# 1. runs.workload: the seed as given (10, not 1) and a replay called "open loop"
"$BIN" db init --db "$TMP/w.db" >/dev/null || fail "db init"
"$BIN" simulate $M $TP4PP2 --poisson 2 --number 20 --seed 10 --db "$TMP/w.db" >/dev/null || fail "simulate --poisson"
"$BIN" simulate $M $TP4PP2 --trace "$TMP/good.csv" --db "$TMP/w.db" >"$TMP/out" || fail "simulate --trace"
grep -qx "workload: trace $TMP/good.csv (2 requests, open loop)" "$TMP/out" || fail "workload line: $(grep workload "$TMP/out")"
"$BIN" bench $M $TP4PP2 --trace "$TMP/good.csv" --parallel 2 --db "$TMP/w.db" >/dev/null || fail "bench --trace"
python3 - "$TMP/w.db" "$TMP/good.csv" <<'PY' || fail "runs.workload descriptions"
import sqlite3, sys
got = [r[0] for r in sqlite3.connect(sys.argv[1]).execute("SELECT workload FROM runs ORDER BY rowid")]
want = ["poisson 2 req/s number=20 lengths uniform seed=10",
        "trace %s (2 requests, open loop)" % sys.argv[2],
        "trace %s (2 requests, closed loop parallel=2)" % sys.argv[2]]
assert got == want, got
PY

# 2. two layouts over a trace with failed rows: the 17 BurstGPT failures are reported once
B="$SHARED/traces/burstgpt_1_first400rows.csv"
if [ -f "$B" ]; then
  "$BIN" bench $M --layout tp=8,ep --layout tp=4,pp=2 --trace "$B" --parallel 1 2 --number 4 4 --json \
    >"$TMP/out" 2>"$TMP/err" || fail "bench over BurstGPT: exit $?"
  n=$(grep -c "17 failed requests" "$TMP/err")
  [ "$n" -eq 1 ] || fail "BurstGPT failed rows reported $n times, want once: $(cat "$TMP/err")"
else
  echo "note: $B missing, part 2 skipped"
fi

# 3. a malformed row stops bench before it prints anything: exit 2, one line naming file:line
"$BIN" bench $M --layout tp=8,ep --layout tp=4,pp=2 --trace "$TMP/bad.csv" --parallel 1 --json \
  >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 2 ] || fail "bench over a bad trace: exit $rc, want 2"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -qF "$TMP/bad.csv:3:" "$TMP/err" || fail "stderr: $(cat "$TMP/err")"
[ ! -s "$TMP/out" ] || fail "bench printed before failing on the trace: $(head -c 200 "$TMP/out")"

cli_done
