#!/usr/bin/env bash
# The 4Q-small augmentation experiment (docs/experiments.md), as a resumable runbook.
#
#   tools/experiment_4q.sh gpu   WORKSPACE   # the protocol: thesis GAN config per class, protocol classifiers
#   tools/experiment_4q.sh pilot WORKSPACE   # CPU pilot: tiny GAN at 64 px, efficientnet_lite0 freeze only
#
# WORKSPACE is a 4Q-small workspace (`augment prepare --dataset panda4q --protocol small ...`). Every step can be
# interrupted and the script run again: GAN training resumes exactly (`--resume`), finished classes are skipped
# when KIMG is reached, and generation/evaluation are deterministic. Environment overrides: KIMG, SEEDS, N_FAKES,
# GAN_FROM (default: ffhq256 when `augment pretrained path ffhq256` finds it, else scratch).
set -euo pipefail
profile=${1:?usage: tools/experiment_4q.sh gpu|pilot WORKSPACE}
ws=${2:?usage: tools/experiment_4q.sh gpu|pilot WORKSPACE}
export AUGMENT_WORKSPACE=$ws
seeds=${SEEDS:-0,1,2}
n_fakes=${N_FAKES:-1000}
classes=$(python -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))['classes']))" "$ws/augment.json")

case $profile in
  gpu)
    kimg=${KIMG:-1000}
    gan_args=(--cfg auto --metrics fid)
    classify_runs=("--arch efficientnet_lite0 --mode whole --pretrained imagenet"
                   "--arch squeezenet1_0 --mode whole --pretrained none")
    ;;
  pilot)
    kimg=${KIMG:-10}
    gan_args=(--cfg tiny --metrics fid --device cpu)
    classify_runs=("--arch efficientnet_lite0 --mode freeze --pretrained imagenet")
    ;;
  *) echo "error: profile must be gpu or pilot, got '$profile'" >&2; exit 2 ;;
esac
if [[ -z ${GAN_FROM:-} ]]; then
  if augment pretrained path ffhq256 >/dev/null 2>&1 && [[ $profile == gpu ]]; then GAN_FROM=ffhq256; else GAN_FROM=scratch; fi
fi

echo "== 1. per-class GANs ($profile: ${gan_args[*]}, $kimg kimg, from $GAN_FROM)"
for c in $classes; do
  if compgen -G "$ws/runs/$c/*/config.json" >/dev/null; then
    augment train --class "$c" --resume --kimg "$kimg"
  else
    augment train --class "$c" --kimg "$kimg" --from "$GAN_FROM" "${gan_args[@]}"
  fi
done

echo "== 2. $n_fakes fakes per class + memorization check"
augment generate --n "$n_fakes" --force
augment check-novelty

echo "== 3. classifiers: real / synthetic / real+synthetic, seeds $seeds"
for run in "${classify_runs[@]}"; do
  for train in real synthetic real+synthetic; do
    # shellcheck disable=SC2086  # $run holds several options on purpose
    classify eval --train "$train" --test real $run --seeds "$seeds" --synthetic-per-class "$n_fakes" --quiet
  done
done
echo "== done: tables in $ws/results/tables/, per-run metrics in $ws/results/<run-id>/, FID in $ws/runs/*/*/stats.jsonl"
