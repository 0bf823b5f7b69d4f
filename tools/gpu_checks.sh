#!/usr/bin/env bash
# Every GPU check of docs/benchmarks.md in one command, for a machine with an NVIDIA GPU (<= 9 minutes on an H200).
#
#   bash tools/gpu_checks.sh [LOGDIR]             # on the GPU machine, from the repository root
#   bash tools/gpu_checks.sh --dry-run [LOGDIR]   # CPU smoke run of the same steps (tiny network, a few minibatches)
#
# 1. build the CUDA ops and compare them with the reference path (tools/check_cuda_ops.py),
# 2. the speed knobs of the training loop at the thesis config (256 px, batch 16), from the same initial weights:
#    fp32, tf32, fp16-top, fp16-top+channels-last, bf16 (train_knobs), then fp32 again, compile and cuda-graphs
#    (train_compiled: inductor compiles during the 8 warm-up minibatches); per knob sec/kimg, peak memory, warm-up s,
#    GPU busy fraction and kernels per minibatch (torch.profiler over 16 minibatches, every phase), the top-10
#    kernels by GPU time, and the parity with plain fp32 after the same minibatches (max |G_ema difference|, G and
#    D loss); the tables are printed at the end,
# 3. the GPU-aware tests, 4. images/s of generation, 5. classifier s/epoch (skipped when the budget is spent).
# Each step's output goes to LOGDIR/<step>.log (default: a new folder under ${TMPDIR:-/tmp}); every benchmark
# appends its JSON line to docs/bench.jsonl (not in --dry-run).
# Python: PYTHON if set, else .venv/bin/python, else a python3 that imports torch, else `make install` makes the
# venv (needs a package index). STEP_TIMEOUT bounds each step (default 240 s; the compiled knobs 300 s),
# TOTAL_TIMEOUT the whole script (default 540 s = 9 min): a step that would start past it is skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
dry=0
if [[ ${1:-} == --dry-run ]]; then dry=1; shift; fi
logdir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_checks.XXXXXX")}
limit=${STEP_TIMEOUT:-240}
total=${TOTAL_TIMEOUT:-540}
mkdir -p "$logdir"
echo "logs: $logdir"

if [[ -n ${PYTHON:-} ]]; then
  py=$PYTHON
elif [[ -x .venv/bin/python ]]; then
  py=.venv/bin/python
elif python3 -c 'import torch, click, safetensors' 2>/dev/null; then
  py=python3
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  if ! make install >"$logdir/install.log" 2>&1; then
    echo "error: no Python with torch and make install failed (see $logdir/install.log); set PYTHON"; exit 2
  fi
  py=.venv/bin/python
fi

status=0
step() {  # step NAME LIMIT COMMAND...: run with a time limit, log, remember a failure, go on
  local name=$1 cap=$2; shift 2
  local t0=$SECONDS left=$((total - SECONDS))
  if ((left < 20)); then
    printf '%-15s skipped (the %ss budget is spent)\n' "$name" "$total"; status=1; return
  fi
  timeout "$((left < cap ? left : cap))" "$@" >"$logdir/$name.log" 2>&1
  local rc=$?
  printf '%-15s rc=%-3s %4ss  %s\n' "$name" "$rc" "$((SECONDS - t0))" "$(tail -n 1 "$logdir/$name.log" | cut -c1-150)"
  if [[ $rc != 0 ]]; then
    status=1
    tail -n 15 "$logdir/$name.log" | sed 's/^/    /'
  fi
}

if ((dry)); then  # the CPU-runnable parts, small: the script's plumbing, the bench's table, the knob refusals
  bench=("$py" tools/bench_train.py --device cpu --cfg tiny --resolution 8 --steps 2 --warmup 1 --profile 1 --no-record)
  if [[ ${DRY_BUILD:-0} == 1 ]]; then step cuda_ops 900 "$py" tools/check_cuda_ops.py --compile-only --no-record
  else echo "cuda_ops        skipped in --dry-run (DRY_BUILD=1 builds the extension with nvcc, minutes of CPU)"; fi
  step train_knobs "$limit" "${bench[@]}" --knobs fp32,tf32,fp16-top,fp16-top+channels-last,bf16
  # inductor on a CPU compiles for minutes: DRY_COMPILE=1 includes it
  step train_compiled "$limit" "${bench[@]}" --knobs "fp32,$([[ ${DRY_COMPILE:-0} == 1 ]] && echo compile,)cuda-graphs"
  step tests_cpu "$limit" "$py" -m pytest -q -x tests/stylegan_ada/test_graph_safe_pipe.py \
    tests/stylegan_ada/test_compiled.py -k "refused or only_when_asked or same_random_draws"
else
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  bench=("$py" tools/bench_train.py --device cuda --steps 32 --warmup 8 --profile 16)
  step cuda_ops 180 "$py" tools/check_cuda_ops.py --fresh
  step train_knobs 180 "${bench[@]}" --knobs fp32,tf32,fp16-top,fp16-top+channels-last,bf16
  step train_compiled "${STEP_TIMEOUT:-300}" "${bench[@]}" --knobs fp32,compile,cuda-graphs
  step tests_gpu "$limit" "$py" -m pytest -q -x tests/stylegan_ada/test_ops.py \
    tests/stylegan_ada/test_cuda_backend.py tests/stylegan_ada/test_cuda_backend_functions.py \
    tests/stylegan_ada/test_networks.py
  GENERATE_TEST_DEVICE=cuda step generate_cuda "$limit" "$py" -m pytest -q -x \
    tests/augment/test_generate_reference.py -k test_synthesize_reproduces_the_reference_images
  step bench_generate "$limit" "$py" tools/bench_generate.py --device cuda --n 1000
  step bench_classify "$limit" "$py" tools/bench_classify.py --device cuda
fi

for name in train_knobs train_compiled; do
  [[ -f $logdir/$name.log ]] || continue
  what="thesis config 256 px, batch 16"
  ((dry)) && what="CPU smoke run, tiny 8 px"
  echo "speed knobs ($name; $what; parity against this table's fp32 row):"
  sed -n '/^knob  /,$p' "$logdir/$name.log"
  grep '^skipped on' "$logdir/$name.log"
done
for name in train_knobs train_compiled; do
  [[ -f $logdir/$name.log ]] || continue
  echo "top-10 by time per knob ($name):"
  grep -v -e '^USDT' -e '^ERROR:' "$logdir/$name.log" | grep -A 15 '^top-10 ops' | grep -v '^--$' | cut -c1-150
  grep '^profile:' "$logdir/$name.log"
done
exit $status
