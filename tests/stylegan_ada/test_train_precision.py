"""--precision / --channels-last on CPU against the plain fp32 path, within the tolerances of precision.py."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

from tests.support.threads import one_torch_thread

STEPS = 2  # minibatch 0 runs every phase (Gmain, Greg, Dmain, Dreg); minibatch 1 the main ones


def _train(**knobs):
    from stylegan_ada import presets
    from stylegan_ada.training.data import ImageSet
    from stylegan_ada.training.training_loop import SINGLE, RunInputs, Trainer

    images = torch.randint(0, 256, [8, 3, 16, 16], dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    opts = presets.training_options("tiny", 16, batch=4, total_kimg=1.0, gamma=1.0, **knobs)
    with tempfile.TemporaryDirectory() as tmp, one_torch_thread():
        tr = Trainer(opts, Path(tmp), RunInputs(ImageSet(images, torch.zeros([8, 0]), mirror=True), {}),
                     torch.device("cpu"), SINGLE, log=lambda line: None)
        tr._restore_or_init()
        init = {k: v.clone() for k, v in tr.G.state_dict().items()}
        for _ in range(STEPS):
            tr._step()
        stats = {k: v["mean"] for k, v in tr.stats.summarize(lambda t: t, 1).items()}
        return init, dict(tr.G.state_dict()), stats


@pytest.fixture(scope="module")
def plain():
    return _train(precision="fp32")


def _delta(a, b, keys):
    return torch.cat([(a[k].double() - b[k].double()).flatten() for k in keys])


@pytest.mark.parametrize("knobs", [dict(precision="tf32"), dict(precision="fp16-top"),
                                   dict(precision="fp16-top", channels_last=True)])
def test_gpu_only_knobs_leave_the_cpu_path_bit_identical(plain, knobs):
    _, weights, stats = _train(**knobs)
    assert all(torch.equal(weights[k], plain[1][k]) for k in weights) and stats == plain[2]


def test_bf16_autocast_trains_like_fp32_within_the_documented_tolerance(plain):
    init, fp32, fp32_stats = plain
    _, bf16, stats = _train(precision="bf16")
    for name in ("Loss/G/loss", "Loss/D/loss"):
        assert stats[name] == pytest.approx(fp32_stats[name], rel=0.01)
    for name in ("Loss/pl_penalty", "Loss/r1_penalty"):
        assert stats[name] == pytest.approx(fp32_stats[name], rel=0.05)
    keys = [k for k in fp32 if fp32[k].is_floating_point() and not k.endswith("w_avg")]
    change = _delta(fp32, init, keys).norm()
    diff = _delta(bf16, fp32, keys).norm()
    assert 0 < diff <= 0.5 * change  # bf16 did run (not silently fp32) and moved the weights the same way (0.30)
