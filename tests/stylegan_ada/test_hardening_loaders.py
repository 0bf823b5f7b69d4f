"""Hostile network files: tiny files that would make a naive loader hang, exhaust memory, recurse to death or crash.

Each file is generated here. Every one must be refused with a one-line NetworkLoadError, having allocated nothing of
what it describes (the 38 GB network is refused from its recorded kwargs, measured on the meta device).
"""
from __future__ import annotations

import io
import json
import pickle
import resource

import numpy as np
import pytest
import torch

import stylegan_ada
from tests.support.paths import FIXTURES
from tests.support.legacy_pickles import Persistent, install_fake_persistence, persistent_record
from tests.support.networks import tiny_networks
from stylegan_ada.checkpoint import _header_digest, save_snapshot

KWARGS = json.loads((FIXTURES / "tiny_kwargs.json").read_text())
# Channels widened until G needs ~38 GB of float32 weights (computed on the meta device: 37.96e9 bytes).
HUGE_G = dict(KWARGS["G"], img_resolution=256,
              synthesis_kwargs=dict(KWARGS["G"]["synthesis_kwargs"], channel_base=1 << 24, channel_max=9000))


def _refused(data: bytes, *match: str) -> str:
    """Load ``data``; it must be refused with a one-line NetworkLoadError containing every ``match``."""
    with pytest.raises(stylegan_ada.NetworkLoadError) as info:
        stylegan_ada.load_network_pkl(io.BytesIO(data))
    message = str(info.value)
    assert "\n" not in message
    for m in match:
        assert m in message, message
    return message


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _record(fn, class_name: str, kwargs: dict, modules: dict | None = None, params: dict | None = None):
    state = {"_parameters": params or {}, "_buffers": {}, "_non_persistent_buffers_set": set(),
             "_modules": modules or {}, "_init_args": (), "_init_kwargs": kwargs}
    return Persistent(fn, dict(type="class", version=6, module_src="", class_name=class_name, state=state))


def test_shared_children_module_tree_is_refused_not_walked_exponentially(monkeypatch):
    fn = install_fake_persistence(monkeypatch)
    node = _record(fn, "Generator", {})
    for _ in range(40):  # every level holds the same child twice: 2^40 paths through 41 objects
        node = _record(fn, "Generator", {}, modules={"a": node, "b": node})
    top = _record(fn, "Generator", KWARGS["G"], modules=node.meta["state"]["_modules"])
    data = pickle.dumps({"G": top}, protocol=4)
    assert len(data) < 4000  # the file was 2.8 KB
    _refused(data, "twice")


def test_shared_nested_lists_in_kwargs_are_refused(monkeypatch):
    fn = install_fake_persistence(monkeypatch)
    bomb: list = [0]
    for _ in range(10):  # 10 levels of 10 references to one list: 1e10 items when walked as a tree
        bomb = [bomb] * 10
    kwargs = dict(KWARGS["G"], mapping_kwargs={"num_layers": 2, "junk": bomb})
    data = pickle.dumps({"G": _record(fn, "Generator", kwargs)}, protocol=4)
    assert len(data) < 1000  # the file was 478 bytes
    _refused(data, "more than", "values")


def test_kwargs_for_a_38_gb_network_in_a_pickle_are_refused_before_allocation(monkeypatch):
    fn = install_fake_persistence(monkeypatch)
    record = persistent_record(fn, tiny_networks()["G"], "# stub")
    record.meta["state"]["_init_kwargs"] = HUGE_G
    data = pickle.dumps({"G": record}, protocol=4)
    message = _refused(data, "MiB", "refusing to allocate")
    assert "36" in message.split("network of ")[1][:6]  # 37.96e9 bytes = 36202 MiB, computed without allocating
    assert _peak_rss_gb() < 8


def _rewrite_metadata(path, **fields: str) -> bytes:
    """Our snapshot with metadata fields replaced and its header checksum recomputed (valid checksums)."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["__metadata__"].update(fields)
    header["__metadata__"]["header_sha256"] = _header_digest(header)
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    return len(new).to_bytes(8, "little") + new + data[8 + n:]


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    from stylegan_ada.augment_pipe import AugmentPipe

    path = tmp_path_factory.mktemp("snap") / "network-snapshot-000000.safetensors"
    nets = tiny_networks()
    save_snapshot(path, **nets, augment_pipe=AugmentPipe(xflip=1))
    return path


def test_kwargs_for_a_38_gb_network_in_a_checksummed_safetensors_are_refused(snapshot):
    from stylegan_ada.checkpoint import _checked_metadata

    data = _rewrite_metadata(snapshot, G_kwargs=json.dumps(HUGE_G))
    _checked_metadata(data)  # framing and both checksums are valid: only the kwargs are hostile
    _refused(data, "G:", "refusing to allocate")
    assert _peak_rss_gb() < 8


def _deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("field, value, match", [
    ("G_kwargs", json.dumps({**KWARGS["G"], "mapping_kwargs": {"num_layers": 2, "x": "@"}}).replace(
        '"@"', _deep_json(50_000)), "is not valid JSON"),
    ("extra", _deep_json(50_000), "is not valid JSON"),
    ("G_kwargs", json.dumps({**KWARGS["G"], "mapping_kwargs": {"x": json.loads(_deep_json(200))}}), "levels deep"),
    ("augment_pipe", json.dumps({"kwargs": 5, "p": 0.1}), "'augment_pipe'"),
    ("augment_pipe", json.dumps({"p": 0.1}), "'augment_pipe'"),
    ("augment_pipe", json.dumps({"kwargs": {"xflip": "lots"}, "p": 0.1}), "'augment_pipe'"),
    ("augment_pipe", json.dumps({"kwargs": {"xflip": 1}, "p": "half"}), "'augment_pipe'"),
    ("augment_pipe", json.dumps([1, 2]), "'augment_pipe'"),
    ("G_kwargs", json.dumps([1, 2]), "'G_kwargs'"),
    ("has_G_ema", json.dumps("yes"), "'has_G_ema'"),
    ("extra", json.dumps(3), "'extra'"),
    ("G_kwargs", json.dumps({**KWARGS["G"], "mapping_kwargs": {"num_layers": 10**9}}), "num_layers"),
])
def test_malformed_snapshot_metadata_is_a_one_line_error_naming_the_field(snapshot, field, value, match):
    data = _rewrite_metadata(snapshot, **{field: value})
    with pytest.raises(stylegan_ada.checkpoint.SnapshotError) as info:
        stylegan_ada.checkpoint.load_snapshot_bytes(data, source="x.safetensors")
    message = str(info.value)
    assert match in message and "\n" not in message and message.startswith("x.safetensors: ")


def _deep_kwargs_pickle(fn, depth: int) -> bytes:
    """A reference pickle whose kwargs hold a list nested ``depth`` levels (hand-written opcodes: pickle.dumps
    itself cannot write it)."""
    kwargs = dict(KWARGS["G"], mapping_kwargs={"num_layers": 2, "x": "PLACEHOLDER_XYZ"})
    record = persistent_record(fn, tiny_networks()["G"], "# stub")
    record.meta["state"]["_init_kwargs"] = kwargs
    data = pickle.dumps({"G": record}, protocol=4)
    marker = b"\x8c\x0fPLACEHOLDER_XYZ"
    assert data.count(marker) == 1
    return data.replace(marker, b"]" * depth + b"a" * (depth - 1))


def test_50000_deep_kwargs_in_a_pickle_are_refused_without_recursion_error(monkeypatch):
    fn = install_fake_persistence(monkeypatch)
    _refused(_deep_kwargs_pickle(fn, 50_000), "levels deep")


# ------------------------------------------------------------------------------------------ TF-era pickles
class _TFNetwork:
    """Pickles as ``dnnlib.tflib.network.Network`` with a given state (what the TF pickles hold)."""

    def __init__(self, state: dict):
        self.state = state

    def __reduce__(self):
        return _TFNetwork, (), self.state


def _tf_bytes(monkeypatch, edit) -> bytes:
    """The TF fixture re-pickled after ``edit(G_state)`` changed its generator's state."""
    import sys
    import types

    from stylegan_ada.legacy.unpickler import restricted_load

    module = types.ModuleType("dnnlib.tflib.network")
    module.Network = _TFNetwork
    _TFNetwork.__module__, _TFNetwork.__qualname__ = "dnnlib.tflib.network", "Network"
    for name in ("dnnlib", "dnnlib.tflib"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "dnnlib.tflib.network", module)

    def convert(net):
        state = dict(net.state)
        state["components"] = {k: convert(v) for k, v in (state.get("components") or {}).items()}
        return _TFNetwork(state)

    tf_G, tf_D, tf_Gs = (convert(n) for n in restricted_load(open(FIXTURES / "tiny_tf_format.pkl", "rb")))
    edit(tf_G.state)
    return pickle.dumps((tf_G, tf_D, tf_Gs), protocol=4)


def _first_conv(state: dict) -> int:
    return next(i for i, (name, v) in enumerate(state["components"]["synthesis"].state["variables"])
                if name.endswith("Conv/weight"))


@pytest.mark.parametrize("edit, match", [
    (lambda s: s.update(static_kwargs=None), "static_kwargs"),                       # TypeError today
    (lambda s: s.update(version="abc"), "version"),                                  # ValueError today
    (lambda s: s.update(variables=None), "variables"),                               # 'NoneType' not iterable
    (lambda s: s.update(components=[1, 2]), "components"),
    (lambda s: s["static_kwargs"].update(resample_kernel=3), "wrong type"),          # list(3)
    (lambda s: s["components"]["synthesis"].state["variables"].__setitem__(
        _first_conv(s), ("4x4/Conv/weight", np.zeros(7, np.float32))), "wrong shape"),  # transpose of a 1-D array
    (lambda s: s["components"].update(again=s["components"]["synthesis"]), "twice"),
    (lambda s: s["static_kwargs"].update(fmap_base=1 << 24, fmap_max=9000, resolution=256), "refusing to allocate"),
])
def test_malformed_tf_pickles_are_one_line_load_errors(monkeypatch, edit, match):
    _refused(_tf_bytes(monkeypatch, edit), match)


def test_unmodified_tf_repickle_still_loads(monkeypatch):
    """Control for the test above: the re-pickling itself is faithful."""
    data = stylegan_ada.load_network_pkl(io.BytesIO(_tf_bytes(monkeypatch, lambda s: None)))
    want = torch.from_numpy(np.load(FIXTURES / "tiny_nets.npz")["G.synthesis.b4.conv1.weight"])
    assert torch.equal(data["G"].synthesis.b4.conv1.weight, want)
