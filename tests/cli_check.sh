#!/usr/bin/env bash
# cli_check: `servesim check` end to end: the seed's acceptance commands (exit codes and the
# strings they must print), --all, --json, and bad input (malformed config, missing file,
# unknown flag, bad value) exiting 2 with one line naming the file:line or the flag.
source "$(dirname "$0")/cli_lib.sh"

M="--model qwen3-235b-a22b-gptq-int4 --hardware a100-40g-pcie --gpus 8"

# weights per GPU from --json, in GB.
weights_gb() {
  python3 -c 'import json,sys; print(json.load(sys.stdin)["verdict"]["memory_per_gpu"]["weight_bytes"]/1e9)' <"$TMP/out"
}
in_range() { python3 -c "import sys; v=float('$1'); sys.exit(0 if $2 <= v <= $3 else 1)" || fail "$1 not in [$2, $3]"; }

# 1. TP=8: rejected, naming the MoeWNA16 error and 192 vs 128.
run 1 check $M -tp 8
has "size_k must divisible by BLOCK_SIZE_K" out
has "192 vs 128" out
has "REJECTED" out
# 2. TP=8 with expert parallel, and TP=4 x PP=2: run, 15-17 GB of weights per GPU.
run 0 check $M -tp 8 --enable-expert-parallel
has "RUNS" out
has "48128 bytes per token" out
run 0 check $M -tp 8 --enable-expert-parallel --json
in_range "$(weights_gb)" 15 17
run 0 check $M --tensor-parallel-size=4 --pipeline-parallel-size 2
has "24064 bytes per token" out
run 0 check $M -tp 4 -pp 2 --json
in_range "$(weights_gb)" 15 17
python3 -c 'import json,sys; d=json.load(sys.stdin); v=d["verdict"]; sys.exit(0 if v["runs"] and v["kv_cache"]["tokens"] > 0 and v["memory_per_gpu"]["kv_bytes_per_token"] == 24064 else 1)' <"$TMP/out" || fail "json of -tp 4 -pp 2"
# 3. FP8 at TP=8: rejected naming block_n 128 and the per-rank 192.
run 1 check --model qwen3-235b-a22b-fp8 --hardware a100-40g-pcie --gpus 8 -tp 8
has "block_n = 128" out
has "= 192 is not divisible" out
# 4. GPU count mismatch, head divisibility.
run 1 check $M -tp 4
has "[gpus]" out
run 1 check --model qwen3-235b-a22b-gptq-int4 --hardware h200-sxm -tp 3
has "must be divisible by tensor parallel size (3)" out
# 5. --all: every layout with a verdict; TP=8 without EP rejected, with EP runs.
run 0 check $M --all
has "8    1    1    off  rejected" out
has "8    1    1    on   runs" out
has "4    2    1    off  runs" out
run 0 check $M --all --json
python3 -c 'import json,sys; d=json.load(sys.stdin); L=d["layouts"]; sys.exit(0 if len(L) >= 10 and d["layouts_that_run"] == sum(x["runs"] for x in L) else 1)' <"$TMP/out" || fail "--all --json"
# A layout that cannot run anywhere: bf16 235B on one 40 GB card -> --all exits 1.
run 1 check --model qwen3-235b-a22b --hardware a100-40g-pcie --gpus 1 --all
# 6. Bad input: exit 2, one line naming the flag or file:line.
run 2 check $M -tp 8 --bogus-flag
one_line; has "unknown flag '--bogus-flag'" err
run 2 check $M -tp
one_line; has "-tp: missing value" err
run 2 check $M --gpu-memory-utilization 2
one_line; has "--gpu-memory-utilization" err
run 2 check --hardware a100-40g-pcie -tp 8
one_line; has "--model is required" err
run 2 check --model "$TMP/none/config.json" --hardware a100-40g-pcie
one_line; has "$TMP/none/config.json" err
run 2 check --model no-such-model --hardware a100-40g-pcie
one_line; has "no-such-model" err
mkdir -p "$TMP/broken"
printf '{\n  "hidden_size": 4096,\n  "num_hidden_layers": 94,\n  "num_attention_heads": 64 64,\n}\n' >"$TMP/broken/config.json"
run 2 check --model "$TMP/broken" --hardware a100-40g-pcie
one_line; has "$TMP/broken/config.json:4:" err
printf '{"name": "x",\n"gpu": "y",\n' >"$TMP/hw.json"
run 2 check --model qwen3-32b --hardware "$TMP/hw.json"
one_line; has "$TMP/hw.json:3:" err
run 0 check --help
has "usage: servesim check" out
# --all lists every layout, however many: 3360 = 2^5 x 3 x 5 x 7 GPUs has over 512 of them
run 1 check --model qwen3-30b-a3b --hardware h100-sxm --gpus 3360 --all
n_head=$(head -1 "$TMP/out" | sed -n 's/.*, \([0-9]*\) layouts$/\1/p')
n_rows=$(grep -cE '^[0-9]+ +[0-9]+ +[0-9]+ ' "$TMP/out")
[ -n "$n_head" ] && [ "$n_head" -gt 512 ] && [ "$n_rows" -eq "$n_head" ] \
  || fail "check --all at 3360 GPUs: header says '$n_head' layouts, $n_rows rows listed"

cli_done
