"""ADA p heuristic: direction and size of the steps, interval, clamping, exact resume via state_dict."""
from __future__ import annotations

import pytest
import torch

from stylegan_ada.ada import AdaController
from stylegan_ada.augment_pipe import make_augment_pipe


def run(ctl: AdaController, pipe, logit_batches: list[torch.Tensor]) -> list[float]:
    ps = []
    for logits in logit_batches:
        ctl.accumulate(logits)
        ctl.end_minibatch(pipe)
        ps.append(pipe.p.item())
    return ps


def test_p_rises_when_d_overfits_and_falls_otherwise():
    pipe = make_augment_pipe("bgc", p=0.0)
    ctl = AdaController(target=0.6, ada_kimg=500, interval=4, batch=16)
    step = 16 * 4 / (500 * 1000)
    assert ctl.step_size == pytest.approx(step)
    overfit = torch.ones(16)  # every real judged real: r_t = 1 > 0.6
    ps = run(ctl, pipe, [overfit] * 8)
    assert ps[:3] == [0.0, 0.0, 0.0]  # adjusted only every `interval` minibatches
    assert ps[3] == pytest.approx(step) and ps[7] == pytest.approx(2 * step)
    assert ctl.r_t == 1.0 and ctl.adjustments == 2
    mixed = torch.tensor([1.0] * 8 + [-1.0] * 8)  # r_t = 0 < 0.6
    ps = run(ctl, pipe, [mixed] * 12)
    assert ps[3] == pytest.approx(step) and ps[7] == 0.0 and ps[11] == 0.0  # clamped at 0


def test_p_can_exceed_one_and_target_hit_exactly_keeps_p():
    pipe = make_augment_pipe("bgc", p=0.99)
    ctl = AdaController(target=0.5, ada_kimg=1, interval=1, batch=4)  # step 0.004
    run(ctl, pipe, [torch.ones(4)] * 5)
    assert pipe.p.item() == pytest.approx(1.01, abs=1e-6)  # like the reference: no upper clamp
    before = pipe.p.item()
    run(ctl, pipe, [torch.tensor([2.0, 0.5, 3.0, -0.1])])  # signs 1, 1, 1, -1: r_t = 0.5 = target
    assert pipe.p.item() == before
    assert ctl.end_minibatch(pipe) and pipe.p.item() == before  # nothing accumulated in the interval: no change
    assert ctl.r_t == 0.5


def test_state_dict_resume_is_exact():
    torch.manual_seed(0)
    batches = [torch.randn(8) + 0.4 * torch.sin(torch.tensor(i / 5.0)) for i in range(40)]
    pipe_a = make_augment_pipe("bgc", p=0.1)
    ctl_a = AdaController(target=0.6, ada_kimg=2, interval=4, batch=8)
    full = run(ctl_a, pipe_a, batches)

    pipe_b = make_augment_pipe("bgc", p=0.1)
    ctl_b = AdaController(target=0.6, ada_kimg=2, interval=4, batch=8)
    run(ctl_b, pipe_b, batches[:18])  # interrupted mid-interval (18 % 4 == 2)
    state, p_saved = ctl_b.state_dict(), pipe_b.state_dict()
    assert isinstance(state["sign_sum"], float) and state["count"] == 16

    pipe_c = make_augment_pipe("bgc")
    pipe_c.load_state_dict(p_saved)
    ctl_c = AdaController(target=0.6, ada_kimg=2, interval=4, batch=8)
    ctl_c.load_state_dict(state)
    resumed = run(ctl_c, pipe_c, batches[18:])
    assert resumed == full[18:]
    assert ctl_c.state_dict() == ctl_a.state_dict()


def test_training_steps_build_no_tensor_from_host_data(monkeypatch):
    # On CUDA a tensor made from a Python number is a synchronising host->device copy; per minibatch there must be
    # none (the sign sum stays on the device, the count is a Python int).
    pipe = make_augment_pipe("bgc", p=0.0)
    ctl = AdaController(target=0.6, ada_kimg=1, interval=2, batch=4)

    def from_host(*args, **kwargs):
        raise AssertionError("a tensor was built from host data during a training step")

    monkeypatch.setattr(torch, "tensor", from_host)
    monkeypatch.setattr(torch, "as_tensor", from_host)
    for _ in range(4):
        ctl.accumulate(torch.ones(2, 1))
        ctl.end_minibatch(pipe)
    monkeypatch.undo()
    assert ctl.r_t == 1.0 and pipe.p.item() == pytest.approx(0.016)
    assert ctl.state_dict()["count"] == 0 and ctl.adjustments == 2


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="target"):
        AdaController(target=1.5)
    with pytest.raises(ValueError):
        AdaController(ada_kimg=0)


def _ada_rank(rank: int, store_path: str, logits: list[list[float]], out: str) -> None:
    """One of two gloo processes: its own logits, the shared p and r_t written to ``out``."""
    import json
    import os

    import torch.distributed as dist

    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", store=dist.FileStore(store_path, 2), rank=rank, world_size=2)
    try:
        pipe = make_augment_pipe("bgc", p=0.0)
        ctl = AdaController(target=0.6, ada_kimg=1, interval=2, batch=8)  # batch: the global batch (2 x 4)
        ps = run(ctl, pipe, [torch.tensor(x) for x in logits])
        with open(out, "w") as f:
            json.dump({"p": ps, "r_t": ctl.r_t}, f)
    finally:
        dist.destroy_process_group()


def test_two_processes_share_one_r_t_and_p(tmp_path):
    """Each rank sees different reals; the all-reduced r_t is that of all 16 signs, so both ranks move p alike.
    Rank 0 alone would measure r_t = 1, rank 1 alone r_t = 0.5 (below the target: p would stay at 0)."""
    import json
    import multiprocessing as mp

    rank_logits = [[[1.0] * 4, [1.0] * 4], [[1.0, 1.0, 1.0, -1.0], [2.0, 0.5, 3.0, -0.1]]]
    ctx = mp.get_context("fork")  # no re-import of torch in the children
    procs = [ctx.Process(target=_ada_rank, args=(r, str(tmp_path / "store"), rank_logits[r],
                                                str(tmp_path / f"rank{r}.json"))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    # signs: 8 + 4 over 16 values -> r_t = 0.75 > 0.6: p rises by 8 x 2 / 1000 on both ranks
    assert results[0]["r_t"] == results[1]["r_t"] == 0.75
    assert results[0]["p"] == results[1]["p"] == [0.0, pytest.approx(0.016)]
