"""Our snapshot format: bit-exact round trip, no code execution, truncation/corruption detection, atomic writes."""
from __future__ import annotations

import errno
import json
import os
import pickle

import pytest
import torch

import stylegan_ada
from tests.support.networks import tiny_networks
from stylegan_ada.augment_pipe import AugmentPipe
from stylegan_ada.checkpoint import (SNAPSHOT_FORMAT, SnapshotError, _header_digest, load_snapshot,
                                     read_snapshot_metadata, save_snapshot, verify_snapshot)


@pytest.fixture(scope="module")
def nets() -> dict[str, torch.nn.Module]:
    nets = tiny_networks()
    with torch.no_grad():  # make G_ema differ from G so a mix-up would show
        for p in nets["G_ema"].parameters():
            p.mul_(0.5)
    return nets


@pytest.fixture
def pipe() -> AugmentPipe:
    pipe = AugmentPipe(xflip=1, rotate90=1, xint=1, brightness=1)
    pipe.p.fill_(0.123)
    return pipe


def _assert_bit_exact(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


def test_round_trip_is_bit_exact(tmp_path, nets, pipe):
    path = tmp_path / "network-snapshot-000004.safetensors"
    extra = {"cur_nimg": 4000, "kimg": 4, "class": "anger"}
    save_snapshot(path, **nets, augment_pipe=pipe, training_set_kwargs={"resolution": 32}, extra=extra)
    loaded = load_snapshot(path)
    for key in ("G", "D", "G_ema"):
        _assert_bit_exact(loaded[key], nets[key])
        assert loaded[key].init_kwargs == nets[key].init_kwargs
    assert loaded["augment_pipe"].init_kwargs == pipe.init_kwargs
    assert torch.equal(loaded["augment_pipe"].p, pipe.p)
    assert loaded["training_set_kwargs"] == {"resolution": 32} and loaded["extra"] == extra
    assert verify_snapshot(path)
    meta = read_snapshot_metadata(path)
    assert meta["format"] == SNAPSHOT_FORMAT and len(meta["payload_sha256"]) == 64


def test_same_module_as_G_and_G_ema(tmp_path, nets):
    path = tmp_path / "s.safetensors"
    save_snapshot(path, G=nets["G"], G_ema=nets["G"])  # e.g. a freshly built G used as its own EMA
    loaded = load_snapshot(path)
    _assert_bit_exact(loaded["G"], nets["G"])
    _assert_bit_exact(loaded["G_ema"], nets["G"])
    assert verify_snapshot(path)


def test_partial_snapshot_has_nones(tmp_path, nets):
    path = tmp_path / "s.safetensors"
    save_snapshot(path, G=nets["G"], D=nets["D"])
    loaded = load_snapshot(path)
    _assert_bit_exact(loaded["D"], nets["D"])
    assert loaded["G_ema"] is None and loaded["augment_pipe"] is None and loaded["training_set_kwargs"] is None
    assert loaded["extra"] == {}


def test_load_network_pkl_reads_snapshots_as_eval_cpu_frozen(tmp_path, nets, pipe):
    path = tmp_path / "s.safetensors"
    save_snapshot(path, **nets, augment_pipe=pipe)
    data = stylegan_ada.load_network_pkl(path)
    for key in ("G", "D", "G_ema", "augment_pipe"):
        module = data[key]
        assert not module.training
        assert all(t.device.type == "cpu" for t in module.state_dict().values())
        assert not any(p.requires_grad for p in module.parameters())
    _assert_bit_exact(data["G_ema"], nets["G_ema"])


def test_loading_never_unpickles(tmp_path, nets, monkeypatch):
    path = tmp_path / "s.safetensors"
    save_snapshot(path, G=nets["G"], D=nets["D"])

    def forbidden(*args, **kwargs):
        raise AssertionError("snapshot loading must not unpickle anything")

    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    _assert_bit_exact(load_snapshot(path)["G"], nets["G"])


@pytest.mark.parametrize("keep", [0, 5, 100, "half", "minus1"])
def test_truncated_file_is_detected(tmp_path, nets, keep):
    path = tmp_path / "s.safetensors"
    save_snapshot(path, G=nets["G"], D=nets["D"])
    data = path.read_bytes()
    n = {"half": len(data) // 2, "minus1": len(data) - 1}.get(keep, keep)
    path.write_bytes(data[:n])
    assert not verify_snapshot(path)
    with pytest.raises(SnapshotError) as info:
        load_snapshot(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_corrupted_payload_and_header_are_detected(tmp_path, nets):
    path = tmp_path / "s.safetensors"
    save_snapshot(path, G=nets["G"])
    good = path.read_bytes()
    flipped = bytearray(good)
    flipped[-1000] ^= 0x01  # one bit inside a weight
    path.write_bytes(bytes(flipped))
    assert not verify_snapshot(path)
    with pytest.raises(SnapshotError, match="checksum"):
        load_snapshot(path)
    broken_header = bytearray(good)
    broken_header[8] = ord("!")
    path.write_bytes(bytes(broken_header))
    with pytest.raises(SnapshotError, match="not valid JSON"):
        load_snapshot(path)
    edited = good.replace(b'\\"num_layers\\": 2', b'\\"num_layers\\": 3')  # valid JSON, wrong metadata
    assert edited != good
    path.write_bytes(edited)
    with pytest.raises(SnapshotError, match="header checksum"):
        load_snapshot(path)


def test_wrong_kwargs_for_the_weights_is_a_snapshot_error(tmp_path, nets):
    path = tmp_path / "s.safetensors"
    save_snapshot(path, G=nets["G"])
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    kwargs = json.loads(header["__metadata__"]["G_kwargs"])
    kwargs["mapping_kwargs"] = {"num_layers": 3}  # a layer the file has no weights for
    header["__metadata__"]["G_kwargs"] = json.dumps(kwargs)
    header["__metadata__"]["header_sha256"] = _header_digest(header)  # a consistent file, just wrong kwargs
    new_header = json.dumps(header).encode()
    new_header += b" " * (-len(new_header) % 8)
    path.write_bytes(len(new_header).to_bytes(8, "little") + new_header + data[8 + n:])
    with pytest.raises(SnapshotError, match="missing"):
        load_snapshot(path)


def test_disk_full_leaves_previous_snapshot_intact(tmp_path, nets, monkeypatch):
    path = tmp_path / "network-snapshot.safetensors"
    save_snapshot(path, G=nets["G"], extra={"kimg": 1})
    before = path.read_bytes()
    real_write = os.write
    written = {"n": 0}

    def write_until_full(fd, data):
        if not os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path)):
            return real_write(fd, data)
        if written["n"] > 50_000:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real_write(fd, bytes(data)[:20_000])  # partial writes, as a filling disk gives
        written["n"] += n
        return n

    monkeypatch.setattr(os, "write", write_until_full)
    with pytest.raises(OSError) as info:
        save_snapshot(path, G=nets["G"], D=nets["D"], extra={"kimg": 2})
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC and "intact" in str(info.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left behind
    assert load_snapshot(path)["extra"] == {"kimg": 1}


def test_g_ema_must_share_g_kwargs(tmp_path, nets):
    from stylegan_ada.networks import Generator

    other = Generator(**{**nets["G"].init_kwargs, "z_dim": 32})
    with pytest.raises(ValueError, match="same kwargs"):
        save_snapshot(tmp_path / "s.safetensors", G=nets["G"], G_ema=other)
    assert not (tmp_path / "s.safetensors").exists()
