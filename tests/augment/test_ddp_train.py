"""Two processes (gloo on CPU) train the same G_ema as one process doing the global batch in two rounds."""
from __future__ import annotations

from tests.support.training import TINY, final_network, g_ema, make_ws, max_abs_diff, only_run, run_child


def test_two_process_gloo_run_matches_one_process_with_the_same_global_batch(tmp_path):
    common = ["--class", "a", *TINY, "--batch", "8", "--kimg", "0.032", "--snap", "100"]
    env = {"OMP_NUM_THREADS": "1"}  # the same thread count in the single process and in each worker
    one, two = make_ws(tmp_path / "one"), make_ws(tmp_path / "two")
    code, out = run_child(["train", "-w", str(one.root), *common, "--batch-gpu", "4"], tmp_path / "one.txt", env)
    assert code == 0, out
    code, out = run_child(["train", "-w", str(two.root), *common, "--gpus", "2"], tmp_path / "two.txt", env)
    assert code == 0, out
    log = (only_run(two.root) / "log.txt").read_text()
    assert "2 process(es) x 1 round(s) x 4" in log
    assert "1 process(es) x 2 round(s) x 4" in (only_run(one.root) / "log.txt").read_text()
    a, b = g_ema(final_network(only_run(one.root))), g_ema(final_network(only_run(two.root)))
    # w_avg (the running mean of w, used only for truncation) is tracked per process as in the reference.
    # Both average the two halves' gradients (README "Loss and schedule"): one process scales each round's loss by
    # 1/rounds and adds the round gradients; two processes all-reduce (sum) and divide by 2. Scaling by a power of
    # two is exact in floating point, so the two are equal bit for bit.
    assert max_abs_diff(a, b, skip=("w_avg",)) == 0.0
