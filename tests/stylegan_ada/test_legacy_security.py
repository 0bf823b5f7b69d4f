"""Pickles that try to run code are refused before anything runs; embedded module source is never executed.

Every attack is checked twice: our loader refuses it and the marker file is absent; then a naive ``pickle.loads``
of the same bytes does create the marker, proving the payload was live (so the test can fail).
"""
from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import stylegan_ada
from tests.support.legacy_pickles import install_fake_easydict, install_fake_persistence, persistent_record, reference_pickle_bytes
from tests.support.networks import tiny_networks
from stylegan_ada.legacy.unpickler import UnsafePickleError


def _payloads(marker: Path) -> dict[str, tuple]:
    write = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        "os.system": (os.system, (f"touch '{marker}'",)),
        "builtins.eval": (builtins.eval, (write,)),
        "builtins.exec": (builtins.exec, (write,)),
        "subprocess.call": (subprocess.call, (["touch", str(marker)],)),
    }


class Evil:
    def __init__(self, reduce_value: tuple):
        self.reduce_value = reduce_value

    def __reduce__(self):
        return self.reduce_value


def _naive_load(data: bytes) -> None:
    try:
        pickle.loads(data)  # noqa: S301 - deliberately unsafe: proves the payload is live
    except Exception:  # noqa: BLE001 - the payload ran before whatever failed afterwards
        pass


def _assert_refused(data: bytes, marker: Path, global_name: str, tmp_path: Path) -> None:
    path = tmp_path / "attack.pkl"
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError) as info:
        stylegan_ada.load_network_pkl(path)
    message = str(info.value)
    assert global_name in message and "not allowed" in message and "\n" not in message
    assert not marker.exists(), "the payload ran"
    _naive_load(data)
    assert marker.exists(), "control: the crafted payload should be live under plain pickle"


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "builtins.exec", "subprocess.call"])
def test_top_level_reduce_payload_is_refused(tmp_path, kind):
    marker = tmp_path / "marker"
    func, args = _payloads(marker)[kind]
    data = pickle.dumps({"G": Evil((func, args))}, protocol=4)
    _assert_refused(data, marker, f"{func.__module__}.{func.__name__}", tmp_path)


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "subprocess.call"])
def test_payload_nested_in_persistence_object_is_refused(tmp_path, monkeypatch, kind):
    fn = install_fake_persistence(monkeypatch)
    marker = tmp_path / "marker"
    G = tiny_networks()["G"]
    record = persistent_record(fn, G, "# stub")
    state = record.meta["state"]
    evil_kwargs = {**state.pop("_init_kwargs"), "mapping_kwargs": Evil(_payloads(marker)[kind])}
    record.meta["state"] = {"_init_kwargs": evil_kwargs, **state}  # first, so the naive control reaches it
    data = pickle.dumps({"G": record, "D": None, "G_ema": None, "augment_pipe": None}, protocol=4)
    func = _payloads(marker)[kind][0]
    _assert_refused(data, marker, func.__name__, tmp_path)


def test_protocol0_global_opcode_is_refused(tmp_path):
    marker = tmp_path / "marker"
    data = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    path = tmp_path / "p0.pkl"
    path.write_bytes(b"\x80\x02" + data[:-1] + b".")  # protocol header so it is treated as a pickle
    with pytest.raises(UnsafePickleError, match="os.system"):
        stylegan_ada.load_network_pkl(path)
    assert not marker.exists()
    _naive_load(data)
    assert marker.exists()


def test_payload_inside_embedded_tensor_bytes_is_refused(tmp_path):
    """``torch.storage._load_from_bytes`` carries a second pickle; torch would unpickle it unrestricted."""
    marker = tmp_path / "marker"
    inner = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    inner += pickle.dumps(Evil((os.system, (f"touch '{marker}'",))), protocol=2)
    outer = pickle.dumps({"G": Evil((torch.storage._load_from_bytes, (inner,)))}, protocol=4)
    _assert_refused(outer, marker, "system", tmp_path)


def test_embedded_module_source_is_never_executed(tmp_path, monkeypatch):
    """A well-formed reference snapshot whose embedded source would write a file: it loads, the file never appears."""
    from stylegan_ada.augment_pipe import AugmentPipe

    fn = install_fake_persistence(monkeypatch)
    marker = tmp_path / "marker"
    source = f"open({str(marker)!r}, 'w').write('ran')\nclass Generator: pass\n"
    nets = tiny_networks()
    pipe = AugmentPipe(xflip=1, rotate90=1, xint=1)
    pipe.p.fill_(0.375)
    easydict = install_fake_easydict(monkeypatch)  # the reference records kwargs as dnnlib.util.EasyDict
    nets["G"].init_kwargs = easydict(nets["G"].init_kwargs, mapping_kwargs=easydict(num_layers=2))
    data = reference_pickle_bytes(fn, {**nets, "augment_pipe": pipe}, source, training_set_kwargs={"resolution": 32})
    assert b"dnnlib.util" in data
    loaded = stylegan_ada.load_network_pkl(io.BytesIO(data))
    assert not marker.exists()
    for key in ("G", "D", "G_ema"):
        ours, ref = loaded[key].state_dict(), nets[key].state_dict()
        assert ours.keys() == ref.keys() and all(torch.equal(ours[k], ref[k]) for k in ref)
    assert isinstance(loaded["augment_pipe"], AugmentPipe)
    assert loaded["augment_pipe"].init_kwargs == pipe.init_kwargs
    assert float(loaded["augment_pipe"].p) == 0.375
    assert not loaded["augment_pipe"].training and loaded["training_set_kwargs"] == {"resolution": 32}


def test_unknown_persistent_class_is_refused_by_name(tmp_path, monkeypatch):
    fn = install_fake_persistence(monkeypatch)
    record = persistent_record(fn, tiny_networks()["G"], "# stub")
    record.meta["class_name"] = "SneakyNetwork"
    data = pickle.dumps({"G": record}, protocol=4)
    with pytest.raises(stylegan_ada.NetworkLoadError, match="SneakyNetwork"):
        stylegan_ada.load_network_pkl(io.BytesIO(data))


def test_object_arrays_and_dotted_names_are_refused():
    with pytest.raises(UnsafePickleError, match="Python objects"):
        stylegan_ada.load_network_pkl(io.BytesIO(pickle.dumps(np.array([1, "a"], dtype=object), protocol=2)))
    attack = b"\x80\x02ccollections\nOrderedDict.__init__.__globals__\n."
    with pytest.raises(UnsafePickleError, match="OrderedDict.__init__.__globals__"):
        stylegan_ada.load_network_pkl(io.BytesIO(attack))


def test_numpy_dtype_singletons_are_not_mutated():
    before = np.dtype("float32").byteorder
    crafted = pickle.dumps(np.zeros(3, dtype=">f4"), protocol=2)  # BUILD sets a big-endian state on the dtype
    with pytest.raises(stylegan_ada.NetworkLoadError):
        stylegan_ada.load_network_pkl(io.BytesIO(crafted))  # an ndarray is no network, but unpickling went through
    assert np.dtype("float32").byteorder == before
