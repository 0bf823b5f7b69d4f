"""CUDA generator states in capture_rng/restore_rng, checked on a CPU machine with a fake CUDA RNG backend.

The fake holds one state tensor per device, as torch.cuda does; the tests check which states are read, which are put
back, on which device, and when nothing is touched. On a GPU the real backend behaves the same way (torch's API)."""
from __future__ import annotations

import pytest
import torch

from stylegan_ada.training import state as state_mod
from stylegan_ada.training.state import capture_rng, restore_rng


class FakeCudaRng:
    def __init__(self, n_devices: int, *, available: bool = True, initialized: bool = True) -> None:
        self.states = {i: torch.tensor([10 * i + 1, 10 * i + 2], dtype=torch.uint8) for i in range(n_devices)}
        self.n, self.available, self.initialized = n_devices, available, initialized
        self.set_calls: list[tuple[int, list[int]]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        cuda = state_mod.torch.cuda
        monkeypatch.setattr(cuda, "is_available", lambda: self.available)
        monkeypatch.setattr(cuda, "is_initialized", lambda: self.initialized)
        monkeypatch.setattr(cuda, "device_count", lambda: self.n)
        monkeypatch.setattr(cuda, "get_rng_state", lambda device=0: self.states[device].clone())
        monkeypatch.setattr(cuda, "set_rng_state", self._set)

    def _set(self, new_state: torch.Tensor, device: int = 0) -> None:
        if device >= self.n:
            raise RuntimeError(f"invalid device {device}")
        self.states[device] = new_state.clone()
        self.set_calls.append((device, new_state.tolist()))


def test_capture_reads_every_device_state_in_device_order(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCudaRng(3)
    fake.install(monkeypatch)
    rng = capture_rng()
    assert [t.tolist() for t in rng["torch_cuda"]] == [[1, 2], [11, 12], [21, 22]]


@pytest.mark.parametrize("available, initialized", [(False, False), (True, False), (False, True)])
def test_capture_leaves_cuda_alone_unless_it_is_available_and_initialized(
        monkeypatch: pytest.MonkeyPatch, available: bool, initialized: bool) -> None:
    fake = FakeCudaRng(2, available=available, initialized=initialized)
    fake.install(monkeypatch)
    assert capture_rng()["torch_cuda"] == []


def test_restore_puts_each_state_back_on_its_own_device(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCudaRng(2)
    fake.install(monkeypatch)
    rng = capture_rng()
    fake.states = {0: torch.tensor([7, 7], dtype=torch.uint8), 1: torch.tensor([8, 8], dtype=torch.uint8)}
    restore_rng(rng)
    assert fake.set_calls == [(0, [1, 2]), (1, [11, 12])]
    assert [fake.states[i].tolist() for i in (0, 1)] == [[1, 2], [11, 12]]


def test_restore_on_fewer_devices_sets_only_those_that_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCudaRng(3)
    fake.install(monkeypatch)
    rng = capture_rng()
    fewer = FakeCudaRng(2)
    fewer.install(monkeypatch)
    restore_rng(rng)
    assert fewer.set_calls == [(0, [1, 2]), (1, [11, 12])]


def test_restore_without_cuda_skips_the_cuda_states(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCudaRng(2)
    fake.install(monkeypatch)
    rng = capture_rng()
    fake.available = False
    restore_rng(rng)
    assert fake.set_calls == []


def test_restore_of_a_cpu_state_does_not_touch_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCudaRng(2, initialized=False)
    fake.install(monkeypatch)
    rng = capture_rng()  # CUDA never initialised: no states captured
    restore_rng(rng)
    assert fake.set_calls == []


def test_the_cpu_generators_still_round_trip_with_cuda_present(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeCudaRng(1).install(monkeypatch)
    rng = capture_rng()
    first = torch.rand(3)
    restore_rng(rng)
    assert torch.equal(torch.rand(3), first)
