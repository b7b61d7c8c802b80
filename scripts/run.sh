#!/usr/bin/env bash
# run.sh: set up, build, and run the main job on the built-in defaults: the seed's question
# (Qwen3-235B-A22B-GPTQ-Int4 on 8x A100 40GB PCIe, vLLM 0.9.2): which layouts can run, and how
# the two that can compare under the seed's evalscope sweep (1024 in / 1024 out).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
S=./build/servesim
M="--model qwen3-235b-a22b-gptq-int4 --hardware a100-40g-pcie --gpus 8"
for layout in "-tp 8" "-tp 8 --enable-expert-parallel" "-tp 4 -pp 2"; do
  echo "== servesim check $M $layout"
  $S check $M $layout || true
  echo
done
echo "== servesim bench $M (EP=8 vs TP=4 x PP=2, evalscope sweep 1/10/50/100)"
$S bench $M --layout "tp=8,ep" --layout "tp=4,pp=2" --parallel 1 10 50 100 --number 10 20 100 200 \
  --dataset random --min-prompt-length 1024 --max-prompt-length 1024 --min-tokens 1024 --max-tokens 1024 \
  --breakdown
