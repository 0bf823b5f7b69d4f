#!/usr/bin/env bash
# The 4Q-small MusiCNN experiment of docs/experiments.md (issue 14), CPU-sized: a workspace prepared with
# `--preset musicnn`, then the baseline, the frozen arms (MusiCNN MSD/MTT and EfficientNet-Lite0), seeds 0,1,2,
# and MusiCNN fine-tuned whole with the default schedule (20 epochs, batch 16, 50-step LR range test): one MusiCNN
# patch costs ~2.7 GFLOP forward, so one whole run takes 19-26 min on one free core (2026-12-01, load ~3).
#   nice -n 10 tools/experiment_musicnn.sh WORKSPACE [PANDA_DIR]
set -euo pipefail
WS=${1:?usage: experiment_musicnn.sh WORKSPACE [PANDA_DIR]}
PANDA=${2:-../shared/data/panda4q}
BIN=${BIN:-.venv/bin}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
[ -f "$WS/augment.json" ] || "$BIN/augment" prepare --dataset panda4q --audio-dir "$PANDA/audio" \
    --annotations "$PANDA/panda_dataset_taffc_annotations.csv" --protocol small --preset musicnn --workspace "$WS"
"$BIN/classify" weights fetch musicnn
for seed in 0 1 2; do "$BIN/classify" baseline --workspace "$WS" --seed "$seed" --jobs 1 --quiet; done
"$BIN/classify" eval --workspace "$WS" --train real --arch musicnn_msd,musicnn_mtt,efficientnet_lite0 --mode freeze \
    --seeds 0,1,2 --quiet
for arch in musicnn_msd musicnn_mtt; do
  "$BIN/classify" eval --workspace "$WS" --train real --arch "$arch" --mode whole --seeds 0,1,2 --quiet
done
