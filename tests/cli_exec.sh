#!/usr/bin/env bash
# cli_exec: servesim-exec's command line before any GPU is touched: unknown commands and flags,
# bad values and missing checkpoints exit 2 with one line naming the flag or file; a TP layout
# vLLM rejects (-tp 8 of the 235B GPTQ model) exits 1 naming the rule; a corrupt checkpoint is
# refused at open. Skipped (77) where servesim-exec was not built (no CUDA/NCCL).
source "$(dirname "$0")/cli_lib.sh"
X="$(dirname "$BIN")/exec/servesim-exec"
[ -x "$X" ] || { echo "SKIP: $X not built (no CUDA/NCCL)"; exit 77; }
RUN_BIN=$X
M="--model qwen3-235b-a22b-gptq-int4"

run 2 frobnicate;                          has "unknown command 'frobnicate'" err; one_line
run 2 generate $M --bogus;                 has "unknown flag '--bogus'" err; one_line
run 2 generate $M -tp zero;                has "-tp: 'zero' is not an integer" err; one_line
run 2 generate $M --router-skew "";        has "--router-skew: ''" err; one_line
run 2 generate $M --batch;                 has "--batch needs a value" err; one_line
run 2 generate $M --batch 0;               has "--batch" err; one_line
run 2 generate -tp 4;                      has "needs --model" err; one_line
run 2 generate --model no-such-model -tp 4; one_line
run 2 generate $M --router-skew -1;        has "--router-skew" err; one_line
run 2 generate $M -tp 4 --weights "$TMP/nothing-here"; has "$TMP/nothing-here" err; one_line
# vLLM's TP=8 wall for this model, from the simulator's own rules, before any GPU is touched
run 1 generate $M -tp 8 --hardware h100-sxm; has "192" err; one_line
run 1 profile $M -tp 8 --hardware h100-sxm;  has "192" err; one_line
# a truncated shard is refused at open, naming the file
mkdir -p "$TMP/ckpt"
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a":' >"$TMP/ckpt/model.safetensors"
run 2 generate $M -tp 4 --weights "$TMP/ckpt"; has "model.safetensors" err; one_line
# the tiny model cannot be split 4 ways (256 / 4 = 64 rows of down_proj per rank < one group)
run 1 verify -tp 4; has "group size" err; one_line

cli_done
