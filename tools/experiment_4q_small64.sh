#!/usr/bin/env bash
# The 4Q-small augmentation experiment at 64 px on CPU, every arm (docs/experiments.md, issue 18), as a runbook that
# resumes where it stopped: run it again after any interruption.
#
#   tools/experiment_4q_small64.sh WORKSPACE [SHARED]     # SHARED: the folder holding data/panda4q (default ../shared)
#
# Steps (each finished step leaves WORKSPACE/.runbook/<step>.done and is skipped next time; GAN training resumes
# exactly from its newest snapshot):
#   prepare → GANs (all classes, --cfg $CFG, $KIMG kimg, FID at every snapshot) → 1000 fakes per class from the
#   best-FID snapshot (FID against the class's train+val reals: never test) → check-novelty → a few fakes as audio →
#   1000 audio-augmented copies per class → classifiers × arms × seeds → classic baseline → paired comparisons.
# Environment: CFG (tiny|small, default small), KIMG (200), SEEDS (0,1,2), N_FAKES (1000), CONCURRENT (2: classes
# trained at once, one thread each), CLASSIFIERS (';'-separated, see below), ARMS (';'-separated, the order they run
# in; default below), CONTROLS_ONLY (1: only the steps that need no GAN — prepare, augment classic, the arms without
# fakes, the baseline — e.g. beside a GAN run in another shell; a later full run skips what they finished).
# Two copies may run at once: every step holds WORKSPACE/.runbook/<step>.lock while it runs. A copy waits for a set-up
# step (prepare, GANs, fakes, classic, baseline) that the other is doing, then skips it; an arm the other is running it
# leaves for later and takes the next. A `--mode freeze` classifier runs an arm's seeds in one step (its frozen features
# are computed once per eval, except under an image preset, which changes them every epoch); any other runs one step
# per seed, so a kill loses one seed's work and two copies share the seeds of an arm.
# Beside a GAN run started with `setsid`, give the other session a lower share of the CPU with
# `echo 19 > /proc/$PID/autogroup` (PID: its runbook's): with autogroup scheduling, `nice` only ranks processes within
# one session, and two sessions split the cores evenly whatever their nice values.
set -euo pipefail
ws=${1:?usage: tools/experiment_4q_small64.sh WORKSPACE [SHARED]}
shared=${2:-../shared}
cfg=${CFG:-small}
kimg=${KIMG:-200}
seeds=${SEEDS:-0,1,2}
n_fakes=${N_FAKES:-1000}
concurrent=${CONCURRENT:-2}
controls_only=${CONTROLS_ONLY:-0}
export AUGMENT_WORKSPACE=$ws
stamps=$ws/.runbook

# begin STEP [-n]: waits while another copy of the runbook holds STEP (with -n answers 2 at once instead), then answers
# 1 (skip) if STEP is done.
begin() {
  mkdir -p "$stamps"
  exec 9>>"$stamps/$1.lock"  # >>: never truncates what a planted link points at
  if [[ ${2:-} == -n ]]; then
    flock -n 9 || { echo "-- $1: another copy is running it, left for later"; return 2; }
  else
    flock 9
  fi
  if [[ -f $stamps/$1.done ]]; then
    echo "-- $1: done before, skipped"
    flock -u 9
    return 1
  fi
}
# finish STEP: stamps STEP done and lets the other copy in.
# The stamp is written to a new file (mktemp: O_EXCL, so never through a planted link) and renamed into place.
finish() {
  local tmp
  tmp=$(mktemp "$stamps/.$1.done.XXXXXX") && date -u +%FT%TZ > "$tmp" && mv -f "$tmp" "$stamps/$1.done"
  flock -u 9
}

echo "== 1. workspace: 4Q-small at 64 px"
if begin prepare; then
  if [[ ! -f $ws/augment.json ]]; then
    augment prepare --dataset panda4q --protocol small --resolution 64 -w "$ws" \
      --audio-dir "$shared/data/panda4q/audio" --annotations "$shared/data/panda4q/panda_dataset_taffc_annotations.csv"
  fi
  finish prepare
fi

echo "== 2. per-class GANs: --cfg $cfg, $kimg kimg each, from scratch, thesis defaults (ADA 0.7, gamma 10, mirror)"
if [[ $controls_only == 1 ]]; then
  echo "-- skipped (CONTROLS_ONLY=1)"
elif begin "gans-$kimg"; then
  if compgen -G "$ws/runs/_jobs/*/job.json" >/dev/null; then
    augment train --classes all --resume --kimg "$kimg" --concurrent "$concurrent" --quiet
  else
    augment train --classes all --cfg "$cfg" --from scratch --kimg "$kimg" --metrics fid --device cpu \
      --concurrent "$concurrent" --quiet
  fi
  finish "gans-$kimg"
fi

echo "== 3. $n_fakes fakes per class from the best-FID snapshot, memorization check, a few fakes as audio"
if [[ $controls_only == 1 ]]; then
  echo "-- skipped (CONTROLS_ONLY=1)"
elif begin fakes; then
  augment generate --n "$n_fakes" --pick best --force --quiet
  augment check-novelty
  for c in $(python -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))['classes']))" "$ws/augment.json"); do
    mapfile -t pngs < <(find "$ws/synthetic/$c" -name '*.png' | sort | head -n 3)
    augment listen "${pngs[@]}" --out "$ws/listen/$c"  # not under results/: the output guard refuses it
  done
  finish fakes
fi

echo "== 4. $n_fakes audio-augmented copies per class (augment classic: pitch, stretch, gain, noise)"
if begin classic; then
  augment classic --n "$n_fakes" --quiet
  finish classic
fi

echo "== 5. classifiers × arms, seeds $seeds"
IFS=';' read -r -a classifiers <<< "${CLASSIFIERS:-efficientnet_lite0 --mode freeze --pretrained imagenet;small_cnn --mode whole}"
# The protocol's arms first; `augmented` (copies only, no real clip) last: it is a reference, not one of its arms.
IFS=';' read -r -a arms <<< "${ARMS:-real;real --aug-preset thesis;real --aug-preset specaugment;real+augmented;synthetic;real+synthetic;real+synthetic+augmented;augmented}"
# eval_step STEP CLASSIFIER ARM SEEDS [-n]: one `classify eval` as one step; answers 0 (ran), 1 (done before) or 2
# (another copy holds it, with -n). A failed eval stops the runbook (set -e does not reach into a tested function).
eval_step() {
  local rc=0
  begin "$1" "${5:-}" || rc=$?
  (( rc == 0 )) || return "$rc"
  # shellcheck disable=SC2086  # $2 and $3 hold several options on purpose
  classify eval --train $3 --test real --arch $2 --seeds "$4" --synthetic-per-class "$n_fakes" --quiet || exit
  finish "$1"
}
later=()  # steps another copy held: waited for (then skipped, or run) once the rest is done
for clf in "${classifiers[@]}"; do
  for arm in "${arms[@]}"; do
    [[ $controls_only == 1 && $arm == *synthetic* ]] && continue
    step="eval-$(echo "$clf $arm" | tr -c 'A-Za-z0-9+_\n' '_')"
    if [[ -f $stamps/$step.done ]]; then echo "-- $step: done before, skipped"; continue; fi
    units=("$step|$seeds")  # STEP|SEEDS
    if [[ $clf != *"--mode freeze"* ]]; then units=(); for s in ${seeds//,/ }; do units+=("$step-seed$s|$s"); done; fi
    for unit in "${units[@]}"; do
      rc=0
      eval_step "${unit%|*}" "$clf" "$arm" "${unit#*|}" -n || rc=$?
      if (( rc == 2 )); then later+=("$unit|$clf|$arm"); fi
    done
  done
done
for item in "${later[@]}"; do
  IFS='|' read -r step s clf arm <<< "$item"
  eval_step "$step" "$clf" "$arm" "$s" || true  # 1: the other copy finished it
done

echo "== 6. classic baseline (handcrafted audio features; model chosen by CV on train+val)"
if begin baseline; then
  classify baseline --quiet
  finish baseline
fi

if [[ $controls_only == 1 ]]; then
  echo "== done (CONTROLS_ONLY=1): run again without it, once the GANs are trained, for the rest"
  exit 0
fi
echo "== 7. paired comparisons: every arm against real and against real + classic image augmentation"
python tools/report_4q_small64.py "$ws" --compare
echo "== done: python tools/report_4q_small64.py $ws --out docs  writes the tables and figures for docs/experiments.md"
