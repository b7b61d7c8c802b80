#!/usr/bin/env bash
# cli_seed: the seed's scenario (../shared/seed/README.md) as a regression guard for issue 3's
# acceptance: Qwen3-235B-A22B-GPTQ-Int4 on 8x A100 40GB PCIe, evalscope sweep 1/10/50/100 with
# 10/20/100/200 requests of 1024 in / 1024 out, EP=8 and TP=4 x PP=2. Every output throughput,
# average TTFT and average TPOT within 25% of the measured table, and both orderings (EP=8 ahead
# at concurrency 1, TP=4 x PP=2 ahead at 50 and 100). The reference figures are the seed's
# measurements (vLLM 0.9.2 + evalscope), not outputs of this code.
source "$(dirname "$0")/cli_lib.sh"
ARGS="--model qwen3-235b-a22b-gptq-int4 --hardware a100-40g-pcie --gpus 8 --parallel 1 10 50 100
      --number 10 20 100 200 --dataset random --min-prompt-length 1024 --max-prompt-length 1024
      --min-tokens 1024 --max-tokens 1024 --json"
"$BIN" bench $ARGS -tp 8 --enable-expert-parallel >"$TMP/ep.json" || { echo "FAIL: bench EP=8" >&2; exit 1; }
"$BIN" bench $ARGS -tp 4 -pp 2 >"$TMP/pp.json" || { echo "FAIL: bench TP=4 x PP=2" >&2; exit 1; }
python3 - "$TMP/ep.json" "$TMP/pp.json" <<'PY'
import json, sys
# seed/README.md: (output tok/s, avg TTFT s, avg TPOT s) per concurrency
seed = {
    "ep": {1: (40.0, 0.273, 0.0248), 10: (259.6, 1.170, 0.0374), 50: (661.6, 3.357, 0.0722), 100: (814.3, 6.344, 0.1161)},
    "pp": {1: (33.2, 0.314, 0.0299), 10: (272.0, 0.964, 0.0359), 50: (747.2, 2.113, 0.0648), 100: (972.0, 3.769, 0.0990)},
}
keys = ("Output token throughput (tok/s)", "Average time to first token (s)", "Average time per output token (s)")
sim = {}
fails = 0
for name, path in (("ep", sys.argv[1]), ("pp", sys.argv[2])):
    for obj in json.load(open(path)):
        c = obj["Number of concurrency"]
        sim[name, c] = tuple(obj[k] for k in keys)
        for k, got, want in zip(keys, sim[name, c], seed[name][c]):
            err = got / want - 1
            ok = abs(err) <= 0.25
            print(f"{name} c={c:<3} {k:<36} sim {got:9.4f} seed {want:9.4f} {err:+6.1%} {'ok' if ok else 'FAIL'}")
            fails += not ok
if not sim["ep", 1][0] > sim["pp", 1][0]:
    print("FAIL: EP=8 should lead output throughput at concurrency 1"); fails += 1
for c in (50, 100):
    if not sim["pp", c][0] > sim["ep", c][0]:
        print(f"FAIL: TP=4 x PP=2 should lead output throughput at concurrency {c}"); fails += 1
sys.exit(1 if fails else 0)
PY
