#!/usr/bin/env bash
# Mutation testing of the modules whose bugs change published numbers or lose data (a benchmark, not CI: slow).
#
#   tools/mutation.sh [MODULE ...]      e.g. tools/mutation.sh augment/render.py
#
# Without arguments every module in MODULES below is run, one after the other. Each module is mutated by mutmut
# (`pip install -e '.[mutation]'`) in its own scratch copy of the working tree ($MUTATION_WORK/<module>/), against only
# the test files that concern it, so one module takes minutes, not hours, on a 2-core machine. Per module it writes
#   $MUTATION_WORK/<module>/summary.txt    killed/survived/timeout counts and the kill rate
#   $MUTATION_WORK/<module>/survivors.txt  every surviving mutant as a diff (`mutmut show`)
# Results and why each survivor is harmless: docs/benchmarks.md, "Mutation testing".
# Environment: MUTATION_WORK (default /tmp/mutation), MUTATION_TIMEOUT (seconds per module, default 1800),
# MUTATION_JOBS (parallel mutants, default 1), MUTATION_CONTINUE=1 (resume a timed-out module in its existing
# scratch copy instead of starting afresh), MUTATION_ONLY (only these mutant names or globs, e.g. the survivors of an
# earlier run, against the current tests), MUTATION_TAG (suffix of the scratch folder, to keep an earlier run's),
# PY (default .venv/bin/python).
set -euo pipefail

# all of it in one function, so bash has read the whole file before running any of it (editing a running
# script is then harmless)
main() {

REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
WORK=${MUTATION_WORK:-/tmp/mutation}
LIMIT=${MUTATION_TIMEOUT:-1800}
JOBS=${MUTATION_JOBS:-1}

# module -> the test files (or pytest node ids) that check it, space separated; slow end-to-end tests are left out
declare -A MODULES=(
  [augment/render.py]="tests/augment/test_generate_reference.py tests/augment/test_generate.py::test_image_depends_only_on_seed_and_noise_mode"
  [augment/datasets/splits.py]="tests/augment/test_truth_splits.py tests/augment/test_datasets_splits.py"
  [stylegan_ada/checkpoint.py]="tests/stylegan_ada/test_checkpoint.py tests/stylegan_ada/test_checkpoint_hostile_bounds.py tests/stylegan_ada/test_hardening_loaders.py tests/stylegan_ada/test_snapshot_fields.py tests/stylegan_ada/test_resume_state.py tests/augment/test_hardening_resume.py"
  [stylegan_ada/training/snapshots.py]="tests/stylegan_ada/test_snapshot_completeness.py tests/stylegan_ada/test_resume_state.py tests/augment/test_hardening_resume.py::test_a_replay_never_overwrites_a_good_network_snapshot_with_other_weights tests/augment/test_hardening_resume.py::test_resume_refuses_when_every_snapshot_file_is_damaged tests/augment/test_hardening_resume.py::test_training_state_with_a_wrong_value_type_is_skipped_naming_the_field"
  [stylegan_ada/training/state.py]="tests/stylegan_ada/test_rng_cuda_states.py tests/stylegan_ada/test_resume_state.py tests/augment/test_truth_state_schema.py tests/stylegan_ada/test_training_state_file.py tests/stylegan_ada/test_snapshot_completeness.py"
  [augment/leak_guard.py]="tests/augment/test_leak_guard_mutants.py"
  [classify/metrics.py]="tests/classify/test_classify_metrics.py tests/classify/test_truth_classify_metrics.py"
  [classify/stats.py]="tests/classify/test_classify_stats.py tests/classify/test_classify_metrics.py"
  [classify/results.py]="tests/classify/test_classify_metrics.py tests/classify/test_truth_classify_metrics.py tests/classify/test_results_writers.py"
)
ORDER=(augment/render.py augment/datasets/splits.py stylegan_ada/checkpoint.py stylegan_ada/training/snapshots.py
       stylegan_ada/training/state.py augment/leak_guard.py classify/metrics.py classify/stats.py classify/results.py)

"$PY" -c "import mutmut" 2>/dev/null || { echo "error: mutmut is not installed; run: $PY -m pip install -e '.[mutation]'" >&2; exit 2; }
MUTMUT="$(dirname "$PY")/mutmut"
[ "$#" -gt 0 ] && ORDER=("$@")
mkdir -p "$WORK"

run_module() {
  local module=$1 tests=${MODULES[$1]:-}
  [ -n "$tests" ] || { echo "error: no tests listed for $module in tools/mutation.sh" >&2; return 2; }
  local present=()
  for t in $tests; do [ -f "$REPO/${t%%::*}" ] && present+=("$t"); done
  [ "${#present[@]}" -gt 0 ] || { echo "skip $module: none of its test files exist ($tests)"; return 0; }
  local dir="$WORK/${module//\//_}${MUTATION_TAG:+-$MUTATION_TAG}"
  if [ "${MUTATION_CONTINUE:-0}" = 1 ] && [ -d "$dir/mutants" ]; then
    echo "continuing the earlier run in $dir (same frozen copy; judged mutants are not run again)"
  else
    rm -rf "$dir" && mkdir -p "$dir"
    # a frozen copy of the working tree: others may edit the checkout while this runs
    (cd "$REPO" && tar --exclude=./.venv --exclude=./.git --exclude=./mutants --exclude=./demo-workspace -cf - .) \
      | tar -xf - -C "$dir"
  fi
  # the tests read ../shared (relative to the repository, and to mutmut's mutants/ copy of it)
  ln -sfn "$REPO/../shared" "$dir/shared"
  ln -sfn "$REPO/../shared" "$WORK/shared"
  {
    echo "[mutmut]"
    echo "source_paths ="
    printf '    %s\n' augment classify stylegan_ada
    echo "only_mutate = $module"
    echo "pytest_add_cli_args_test_selection ="
    printf '    %s\n' "${present[@]}"
    echo "pytest_add_cli_args ="
    printf '    %s\n' -p no:cacheprovider
    echo "process_isolation = forkserver"
    echo "use_git_change_detection = false"
  } > "$dir/setup.cfg"
  echo "== $module ($(date -u +%H:%M:%S) UTC) tests: ${present[*]}"
  local rc=0
  # shellcheck disable=SC2086  # MUTATION_ONLY: mutant names or globs, e.g. "augment.render.x_latents*"
  (cd "$dir" && OMP_NUM_THREADS=1 timeout "$LIMIT" nice -n 10 "$MUTMUT" run --max-children "$JOBS" \
     ${MUTATION_ONLY:-} > "$dir/run.log" 2>&1) || rc=$?
  (cd "$dir" && "$MUTMUT" results --all true > "$dir/results.txt" 2>&1) || true
  "$PY" - "$dir" "$module" "$rc" <<'EOF'
import collections, re, subprocess, sys
from pathlib import Path
d, module, rc = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
status = collections.Counter()
survivors = []
for line in (d / "results.txt").read_text().splitlines():
    m = re.match(r"\s*(\S+__mutmut_\d+): (.+)$", line)
    if m:
        status[m[2].strip()] += 1
        if m[2].strip() == "survived":
            survivors.append(m[1])
killed = status["killed"] + status["timeout"]
judged = killed + status["survived"]
rate = f"{100 * killed / judged:.1f} %" if judged else "n/a"
note = "" if rc == 0 else f" (mutmut exit {rc}{', timed out: partial' if rc == 124 else ''})"
summary = f"{module}: {judged} judged, {killed} killed ({status['timeout']} by timeout), " \
          f"{status['survived']} survived, kill rate {rate}; other: " \
          f"{dict((k, v) for k, v in status.items() if k not in ('killed', 'survived', 'timeout'))}{note}"
(d / "summary.txt").write_text(summary + "\n")
with open(d / "survivors.txt", "w") as f:
    for name in survivors:
        out = subprocess.run([str(Path(sys.executable).parent / "mutmut"), "show", name], cwd=d,
                             capture_output=True, text=True).stdout
        f.write(f"# {name}\n{out}\n")
print(summary)
EOF
}

for module in "${ORDER[@]}"; do run_module "$module" || true; done
}

main "$@"; exit $?  # one line: bash has read the exit before main runs
