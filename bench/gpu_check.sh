#!/usr/bin/env bash
# The GPU numbers of issue 25 in one go, for a machine with one CUDA GPU (H100/H200/A100) and this repo installed:
#   1. bench/gpu_throughput.py: MFU of full FT and LoRA on the 410m shape, bf16, fixed-length data (target >= 45 %),
#      peak memory beside the planner's estimate;
#   2. bench/padding_free_run.py on the 410m shape, bf16: a default (padding-free) `st-recipe train` and one with
#      --no-padding-free on each data shape: executed / useful FLOPs and wall time (the padding-free speed-up).
# Results land in bench/results/gpu_throughput.md and bench/results/padding_free_run.gpu.md (device and date in each
# header). Usage: bash bench/gpu_check.sh [OUTDIR]   (OUTDIR: where to copy the two files as well, e.g. $OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python bench/gpu_throughput.py
python bench/padding_free_run.py --model random:pythia-410m --bf16 --batch 128 --steps 20 \
    --out bench/results/padding_free_run.gpu.md
if [ "${1:-}" != "" ]; then
    mkdir -p "$1" && cp bench/results/gpu_throughput.md bench/results/padding_free_run.gpu.md "$1"/
fi
