"""The training-state file (stylegan_ada/training/state.py) refuses every kind of damage with its own one-line
reason, never half-writes, and the schema refuses each wrong value by field; files are built by hand with torch.save
(the documented format), not by the writer under test."""
from __future__ import annotations

import hashlib
import io
import math
import os
import random

import numpy as np
import pytest
import torch

from stylegan_ada.training.state import (STATE_FORMAT, TrainingStateError, capture_rng, check_state,
                                         load_resumable_state, load_training_state, restore_rng, save_training_state,
                                         verify_pair)


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _wrapped(inner: bytes, **override) -> bytes:
    record = {"format": STATE_FORMAT, "sha256": hashlib.sha256(inner).hexdigest(),
              "payload": torch.frombuffer(bytearray(inner), dtype=torch.uint8)}
    return _saved({**record, **override})


def test_the_file_is_the_documented_wrapper_around_the_state(tmp_path):
    path = save_training_state(tmp_path / "training-state-000004.pt", {"cur_nimg": 4000, "w": torch.arange(3)})
    outer = torch.load(path, weights_only=True)
    raw = outer["payload"].numpy().tobytes()
    assert outer["format"] == STATE_FORMAT and outer["sha256"] == hashlib.sha256(raw).hexdigest()
    inner = torch.load(io.BytesIO(raw), weights_only=True)
    assert inner["cur_nimg"] == 4000 and torch.equal(inner["w"], torch.arange(3))
    # and a file written by hand in that format loads
    (tmp_path / "hand.pt").write_bytes(_wrapped(_saved({"cur_nimg": 8})))
    assert load_training_state(tmp_path / "hand.pt") == {"cur_nimg": 8}


@pytest.mark.parametrize("damage,reason", [
    ("missing", "x.pt does not exist"),
    ("directory", "x.pt cannot be read (Is a directory)"),
    ("garbage", "x.pt is truncated or corrupt (UnpicklingError)"),
    ("not-a-dict", f"x.pt is not a {STATE_FORMAT} file"),
    ("other-format", f"x.pt is not a {STATE_FORMAT} file"),
    ("no-payload", "x.pt has no payload (corrupt file)"),
    ("int-payload", "x.pt has no payload (corrupt file)"),
    ("checksum", "x.pt fails its checksum (corrupt file)"),
    ("payload-garbage", "x.pt payload is unreadable (UnpicklingError)"),
    ("payload-list", "x.pt payload is not a dict (corrupt file)"),
])
def test_each_kind_of_damage_is_refused_with_its_reason(tmp_path, damage, reason):
    path = tmp_path / "x.pt"
    good = _saved({"cur_nimg": 8})
    data = {"garbage": b"not a torch file",
            "not-a-dict": _saved([1, 2]),
            "other-format": _wrapped(good, format="stylegan_ada-training-state-v0"),
            "no-payload": _saved({"format": STATE_FORMAT, "sha256": hashlib.sha256(good).hexdigest()}),
            "int-payload": _wrapped(good, payload=torch.frombuffer(bytearray(good), dtype=torch.uint8).to(
                torch.int16)),
            "checksum": _wrapped(good, sha256=hashlib.sha256(b"other").hexdigest()),
            "payload-garbage": _wrapped(b"garbage payload"),
            "payload-list": _wrapped(_saved([1, 2]))}.get(damage)
    if damage == "directory":
        path.mkdir()
    elif data is not None:
        path.write_bytes(data)
    with pytest.raises(TrainingStateError) as info:
        load_training_state(path)
    assert str(info.value).startswith(reason) and "\n" not in str(info.value), str(info.value)


class _RunsCode:
    """Unpickling this calls os.mkdir(marker): what a crafted training state would do to a code-running loader."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.mark.parametrize("where", ["outer", "payload"])
def test_a_state_file_that_would_run_code_is_refused_without_running_it(tmp_path, where):
    marker = tmp_path / "code-ran"
    evil = _saved({"cur_nimg": _RunsCode(marker)})
    (tmp_path / "x.pt").write_bytes(evil if where == "outer" else _wrapped(evil))
    with pytest.raises(TrainingStateError, match="(truncated or corrupt|payload is unreadable) "
                                                 r"\(UnpicklingError\)"):
        load_training_state(tmp_path / "x.pt")
    assert not marker.exists()


def _flip_written_bytes(monkeypatch) -> None:
    """A disk that stores other bytes than it was given (the temp file of a training state)."""
    real_write = os.write

    def write(fd: int, data) -> int:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith(".training-state-"):
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
        return real_write(fd, bytes(data))

    monkeypatch.setattr(os, "write", write)


def test_a_write_that_reaches_the_disk_wrong_is_refused_and_the_old_file_stays(tmp_path, monkeypatch):
    path = save_training_state(tmp_path / "training-state-000004.pt", {"cur_nimg": 1})
    old = path.read_bytes()
    _flip_written_bytes(monkeypatch)
    with pytest.raises(OSError, match="training-state-000004.pt: the written file differs from the data"):
        save_training_state(path, {"cur_nimg": 2})
    monkeypatch.undo()
    assert path.read_bytes() == old and os.listdir(tmp_path) == [path.name]


def test_rng_restore_brings_back_cached_gaussians_too():
    np.random.seed(1)
    np.random.standard_normal()      # numpy now holds a cached second gaussian
    random.seed(2)
    random.gauss(0.0, 1.0)           # so does Python's random
    torch.manual_seed(3)
    rng = capture_rng()
    assert rng["numpy"]["has_gauss"] == 1 and rng["python"]["gauss"] is not None
    first = (np.random.standard_normal(3), np.random.rand(2), random.gauss(0.0, 1.0), random.random(),
             torch.randn(2))
    restore_rng(rng)
    again = (np.random.standard_normal(3), np.random.rand(2), random.gauss(0.0, 1.0), random.random(),
             torch.randn(2))
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2] and first[3] == again[3] and torch.equal(first[4], again[4])
    assert rng["torch_cuda"] == []   # a CPU-only process records no CUDA generator


# ------------------------------------------------------------------------------------------------- the schema
def _opt() -> dict:
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.Adam([p])
    p.grad = torch.ones(2)
    opt.step()
    return opt.state_dict()


def _state() -> dict:
    return {"cur_nimg": 8, "cur_tick": 1, "batch_idx": 2, "tick_start_nimg": 4, "data_pos": 8,
            "last_snapshot_nimg": None, "wall_seconds": 1.5, "metric_history": [{"fid": 3.0}],
            "G_opt": _opt(), "D_opt": _opt(), "pl_mean": torch.zeros([]),
            "ada": {"count": 0, "minibatches": 2, "adjustments": 0, "sign_sum": 0.0, "r_t": None},
            "augment_p": torch.zeros([]), "network_snapshot": "network-snapshot-000000.safetensors",
            "network_sha256": "0" * 64, "rng": capture_rng()}


def _set(state: dict, path: str, value) -> dict:
    """``state`` with the value at the dotted ``path`` replaced (or removed when value is ...)."""
    *outer, last = path.split(".")
    d = state
    for k in outer:
        d[k] = dict(d[k])
        d = d[k]
    if value is ...:
        del d[last]
    else:
        d[last] = value
    return state


WANT = {"cur_tick": "an integer >= 0", "batch_idx": "an integer >= 0", "tick_start_nimg": "an integer >= 0",
        "last_snapshot_nimg": "an integer >= 0 or None", "wall_seconds": "a number >= 0",
        "metric_history": "a list of dicts", "G_opt": "an optimizer state dict", "D_opt": "an optimizer state dict",
        "pl_mean": "a one-element float tensor", "ada": "the ADA controller's state or None",
        "augment_p": "a tensor or None", "network_snapshot": "a file name", "network_sha256": "a sha256",
        "rng": "the random generators' states"}

BAD = [("cur_tick", -1), ("batch_idx", 0.5), ("tick_start_nimg", "4"), ("last_snapshot_nimg", -1),
       ("last_snapshot_nimg", False), ("wall_seconds", -0.5), ("wall_seconds", math.inf), ("wall_seconds", True),
       ("wall_seconds", "1"), ("wall_seconds", 10 ** 400), ("ada.sign_sum", -10 ** 400), ("metric_history", [{"fid": 1.0}, 3]), ("metric_history", ({"fid": 1.0},)),
       ("G_opt", {"state": [], "param_groups": []}), ("D_opt", {"state": {}, "param_groups": {}}),
       ("D_opt", {"state": {}, "param_groups": [[]]}), ("G_opt", None),
       ("pl_mean", torch.zeros(2)), ("pl_mean", torch.zeros([], dtype=torch.int64)), ("pl_mean", 0.0),
       ("ada.minibatches", -1), ("ada.adjustments", None), ("ada.sign_sum", math.nan), ("ada.sign_sum", "0"),
       ("ada.r_t", "0.5"), ("ada.r_t", math.inf), ("ada", []), ("augment_p", 0.5),
       ("network_snapshot", None), ("network_sha256", 0),
       ("rng", None), ("rng.torch_cpu", torch.zeros(3, dtype=torch.int64)), ("rng.torch_cuda", None),
       ("rng.numpy", None), ("rng.python", None), ("rng.numpy.keys", torch.zeros(624, dtype=torch.int32)),
       ("rng.numpy.keys", torch.zeros(623, dtype=torch.int64)), ("rng.numpy.pos", -1),
       ("rng.numpy.has_gauss", None), ("rng.numpy.cached_gaussian", math.nan), ("rng.python.version", "3"),
       ("rng.python.state", torch.zeros(625, dtype=torch.int32)), ("rng.python.gauss", "x")]


@pytest.mark.parametrize("field,value", BAD, ids=[f"{f}={v!r}"[:40] for f, v in BAD])
def test_each_wrong_value_is_refused_naming_its_field(field, value):
    top = field.split(".")[0]
    state = _set(_state(), field, value)
    with pytest.raises(TrainingStateError) as info:
        check_state(state, "x.pt")
    assert str(info.value) == f"x.pt: field {top!r} must be {WANT[top]}, got {type(state[top]).__name__}"


GOOD = [("last_snapshot_nimg", 0), ("wall_seconds", 0), ("wall_seconds", 2), ("metric_history", []),
        ("ada", None), ("ada.r_t", 0.5), ("ada.sign_sum", 3), ("augment_p", None), ("rng.torch_cuda", ...),
        ("rng.python.gauss", None), ("rng.python.gauss", 0.25), ("cur_tick", 0)]


@pytest.mark.parametrize("field,value", GOOD, ids=[f"{f}={v!r}" for f, v in GOOD])
def test_each_boundary_value_is_accepted(field, value):
    check_state(_set(_state(), field, value), "x.pt")


@pytest.mark.parametrize("field", list(WANT))
def test_each_missing_field_is_named(field):
    with pytest.raises(TrainingStateError) as info:
        check_state(_set(_state(), field, ...), "x.pt")
    assert str(info.value) == f"x.pt has no {field!r} (not a complete training state)"


# ---------------------------------------------------------------------------------------------------- the pair
def test_a_state_belongs_to_one_network_file(tmp_path):
    net = tmp_path / "network-snapshot-000004.safetensors"
    net.write_bytes(b"weights")
    state = dict(_state(), network_snapshot=net.name, network_sha256=hashlib.sha256(b"weights").hexdigest())
    verify_pair(state, net)
    with pytest.raises(TrainingStateError) as info:
        verify_pair(state, tmp_path / "network-snapshot-000008.safetensors")
    assert str(info.value) == f"it belongs to {net.name!r}, not network-snapshot-000008.safetensors"
    net.write_bytes(b"other weights")
    with pytest.raises(TrainingStateError) as info:
        verify_pair(state, net)
    assert str(info.value) == f"its network snapshot {net.name} is damaged or from another run (sha256 differs)"
    net.unlink()
    with pytest.raises(TrainingStateError) as info:
        verify_pair(state, net)
    assert str(info.value) == f"its network snapshot {net.name} is missing"


def test_load_resumable_state_checks_intact_complete_and_paired(tmp_path):
    net = tmp_path / "network-snapshot-000004.safetensors"
    net.write_bytes(b"weights")
    state = dict(_state(), network_snapshot=net.name, network_sha256=hashlib.sha256(b"weights").hexdigest())
    path = save_training_state(tmp_path / "training-state-000004.pt", state)
    assert load_resumable_state(path, net)["cur_nimg"] == 8
    save_training_state(path, _set(dict(state), "pl_mean", ...))
    with pytest.raises(TrainingStateError, match="training-state-000004.pt has no 'pl_mean'"):
        load_resumable_state(path, net)
    save_training_state(path, dict(state, network_sha256="0" * 64))
    with pytest.raises(TrainingStateError, match="sha256 differs"):
        load_resumable_state(path, net)
