"""The one --device rule (stylegan_ada.devices): every value against the written rule, with 0, 1 or 2 fake GPUs."""
from __future__ import annotations

import pytest
import torch

from augment.errors import UserError, user_device
from stylegan_ada.devices import DeviceError, resolve_device


@pytest.fixture()
def gpus(monkeypatch):
    """Pretend torch sees ``n`` CUDA devices (no device is touched: the rule only asks these two questions)."""
    def set_count(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    return set_count


@pytest.mark.parametrize("visible, name, expected", [
    (0, "auto", "cpu"), (0, None, "cpu"), (2, "auto", "cuda"), (2, None, "cuda"),
    (0, "cpu", "cpu"), (2, "cpu", "cpu"), (2, " CPU ", "cpu"),
    (1, "cuda", "cuda"), (1, "cuda:0", "cuda:0"), (2, "CUDA:1", "cuda:1"),
])
def test_accepted_names(gpus, visible, name, expected):
    gpus(visible)
    assert resolve_device(name) == expected


@pytest.mark.parametrize("visible, name, gpu_count, fragment", [
    (2, "tpu", 1, "--device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
    (2, "cuda:", 1, "must be auto, cpu, cuda or cuda:N"),
    (2, "cuda:-1", 1, "must be auto, cpu, cuda or cuda:N"),
    (2, "", 1, "must be auto, cpu, cuda or cuda:N"),
    (2, "cpu:0", 1, "must be auto, cpu, cuda or cuda:N"),
    (0, "cuda", 1, "--device cuda: no CUDA GPU is visible to PyTorch; use --device cpu"),
    (0, "cuda:0", 1, "--device cuda:0: no CUDA GPU"),
    (2, "cuda:2", 1, "--device cuda:2: only 2 CUDA device(s) are visible (cuda:0..cuda:1)"),
    (1, "cuda", 2, "--gpus 2 but only 1 GPU(s) are visible"),
    (1, "auto", 2, "--gpus 2 but only 1 GPU(s) are visible"),
])
def test_refused_names(gpus, visible, name, gpu_count, fragment):
    gpus(visible)
    with pytest.raises(DeviceError) as info:
        resolve_device(name, gpus=gpu_count)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_gpus_is_not_checked_on_the_cpu(gpus):
    gpus(0)
    assert resolve_device("auto", gpus=4) == "cpu"


def test_cli_callers_get_the_same_rule_as_one_user_error(gpus):
    gpus(1)
    assert user_device("Cuda:0") == "cuda:0"
    with pytest.raises(UserError, match=r"--device cuda:1: only 1 CUDA device\(s\)"):
        user_device("cuda:1")
