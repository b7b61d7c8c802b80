#!/usr/bin/env bash
# run.sh: set up, build, and run the main job on the built-in defaults: the seed's question
# (Qwen3-235B-A22B-GPTQ-Int4 on 8x A100 40GB PCIe): which layouts run, and how they compare.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
S=./build/servesim
M="--model qwen3-235b-a22b-gptq-int4 --hardware a100-40g-pcie --gpus 8"
for layout in "-tp 8" "-tp 8 --enable-expert-parallel" "-tp 4 -pp 2"; do
  echo "== servesim check $M $layout"
  $S check $M $layout || true
done
