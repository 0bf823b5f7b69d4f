#!/usr/bin/env bash
# Every GPU check of docs/benchmarks.md in one go, for a machine with an NVIDIA GPU (<= 9 minutes; ~5 on an H100).
#
#   tools/gpu_checks.sh LOGDIR
#
# 1. build the CUDA ops and compare them with the reference path (tools/check_cuda_ops.py), 2. the GPU-aware tests,
# 3. the speed knobs of the training loop (thesis config, 256 px, batch 16): a table of sec/kimg, peak memory and
# parity with plain fp32 per --precision / --channels-last (tools/bench_train.py --knobs, printed at the end), and a
# profile (GPU kernels per minibatch, GPU busy fraction, top kernels), 4. images/s of generation, 5. classifier s/epoch.
# Each step's output goes to LOGDIR/<step>.log; every benchmark appends its JSON line to docs/bench.jsonl.
# PYTHON overrides the interpreter (default: python3); STEP_TIMEOUT bounds each step in seconds (default 240);
# TOTAL_TIMEOUT the whole script (default 540 s = 9 min): a step that would start past it is skipped.
set -uo pipefail
logdir=${1:?usage: tools/gpu_checks.sh LOGDIR}
py=${PYTHON:-python3}
limit=${STEP_TIMEOUT:-240}
total=${TOTAL_TIMEOUT:-540}
mkdir -p "$logdir"
status=0
step() {  # step NAME COMMAND...: run with a time limit, log, remember a failure, go on
  local name=$1; shift
  local t0=$SECONDS
  local left=$((total - SECONDS))
  if ((left < 20)); then
    printf '%-14s skipped (the %ss budget is spent)\n' "$name" "$total"; status=1; return
  fi
  timeout "$((left < limit ? left : limit))" "$@" >"$logdir/$name.log" 2>&1
  local rc=$?
  printf '%-14s rc=%-3s %4ss  %s\n' "$name" "$rc" "$((SECONDS - t0))" "$(tail -n 1 "$logdir/$name.log" | cut -c1-150)"
  if [[ $rc != 0 ]]; then
    status=1
    tail -n 15 "$logdir/$name.log" | sed 's/^/    /'
  fi
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
step cuda_ops "$py" tools/check_cuda_ops.py --fresh
step tests_gpu "$py" -m pytest -q -x tests/stylegan_ada/test_ops.py tests/stylegan_ada/test_cuda_backend.py tests/stylegan_ada/test_cuda_backend_functions.py \
  tests/stylegan_ada/test_networks.py
step train_knobs "$py" tools/bench_train.py --device cuda --knobs --steps 32 --warmup 16
step profile_train "$py" tools/bench_train.py --device cuda --steps 16 --warmup 16 --profile 16 --no-record
step bench_generate "$py" tools/bench_generate.py --device cuda --n 1000
step bench_classify "$py" tools/bench_classify.py --device cuda
echo "speed knobs (thesis config, batch 16):"
sed -n '/^knob /,$p' "$logdir/train_knobs.log"
echo "top kernels by GPU time:"
grep -A 14 -m 1 'Self CUDA' "$logdir/profile_train.log" | cut -c1-150
exit $status
