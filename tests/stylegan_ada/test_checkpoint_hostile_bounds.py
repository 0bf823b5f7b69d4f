"""The snapshot loader's hostile-file checks, bound by bound: for each refused record a crafted file just outside
(refused, with its reason) and one just inside (loads). Files are built by hand here (safetensors framing, checksums
as docs/architecture.md describes them), with no networks, so each load costs milliseconds."""
from __future__ import annotations

import hashlib
import json
import math
import struct

import pytest
import torch

import stylegan_ada.checkpoint as checkpoint
from stylegan_ada.augment_pipe import AugmentPipe  # noqa: F401  (imported lazily by the loader: load it once here)
from stylegan_ada.checkpoint import SNAPSHOT_FORMAT, SnapshotError, is_snapshot_bytes, load_snapshot_bytes
from stylegan_ada.legacy.loader import NetworkLoadError, load_network_bytes

PIPE_RULE = "metadata field 'augment_pipe' must be {\"kwargs\": {...}, \"p\": a number >= 0}"
MAX_HEADER = 100 << 20  # the documented bound on the safetensors header length


def _frame(header_bytes: bytes, payload: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header_bytes)) + header_bytes + payload


def _snapshot(pipe_json: str = "null", tensors: dict | None = None, payload: bytes = b"") -> bytes:
    """A snapshot holding no networks: metadata, optional raw tensor specs, both checksums computed here."""
    meta = {"format": SNAPSHOT_FORMAT, "G_kwargs": "null", "D_kwargs": "null", "has_G_ema": "false",
            "augment_pipe": pipe_json, "training_set_kwargs": "null", "extra": "null",
            "payload_sha256": hashlib.sha256(payload).hexdigest()}
    header = {**(tensors or {}), "__metadata__": meta}
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    meta["header_sha256"] = hashlib.sha256(canonical).hexdigest()
    return _frame(json.dumps(header).encode(), payload)


def _refused(data: bytes) -> str:
    with pytest.raises(SnapshotError) as info:
        load_snapshot_bytes(data, source="x.safetensors")
    return str(info.value)


# ----------------------------------------------------------------------------------------- augment_pipe record

@pytest.mark.parametrize("p", [0, 0.0, 0.25, 1])
def test_a_pipe_record_with_p_at_or_above_zero_loads_with_that_p(p):
    out = load_snapshot_bytes(_snapshot(json.dumps({"kwargs": {"xflip": 1}, "p": p})))
    pipe = out["augment_pipe"]
    assert pipe.init_kwargs["xflip"] == 1 and pipe.p.item() == pytest.approx(p)
    assert out["G"] is None and out["D"] is None and out["G_ema"] is None and out["extra"] == {}


def test_no_pipe_record_loads_as_no_pipe():
    assert load_snapshot_bytes(_snapshot("null"))["augment_pipe"] is None


@pytest.mark.parametrize("record", [
    {"kwargs": {}, "p": -1e-12},                 # just below 0
    {"kwargs": {}, "p": 0, "extra": 1},          # one key too many, all else valid
    {"kwargs": {}},                              # p missing
    {"p": 0},                                    # kwargs missing
    {"kwargs": [], "p": 0},                      # kwargs not an object
    {"kwargs": {}, "p": True},                   # a bool is not a number here
    {"kwargs": {}, "p": "0.5"},                  # a string is not a number
    {"kwargs": {}, "p": None},
], ids=["p-below-0", "extra-key", "no-p", "no-kwargs", "kwargs-list", "p-bool", "p-string", "p-null"])
def test_each_malformed_pipe_record_is_refused_alone(record):
    assert _refused(_snapshot(json.dumps(record))) == f"x.safetensors: {PIPE_RULE}"


@pytest.mark.parametrize("p", [math.nan, math.inf, -math.inf])
def test_a_non_finite_p_is_refused(p):
    pipe_json = json.dumps({"kwargs": {}, "p": p})          # json writes NaN / Infinity, which json.loads accepts
    assert _refused(_snapshot(pipe_json)) == f"x.safetensors: {PIPE_RULE}"


def test_pipe_kwargs_the_pipe_rejects_are_refused_naming_the_error():
    msg = _refused(_snapshot(json.dumps({"kwargs": {"no_such_knob": 1}, "p": 0})))
    assert msg == ("x.safetensors: metadata field 'augment_pipe': cannot build the pipe from its kwargs "
                   "(TypeError)")


# -------------------------------------------------------------------------------------- safetensors magic test

def _head(n: int, first: bytes = b"{") -> bytes:
    return struct.pack("<Q", n) + first


def test_is_snapshot_bytes_bounds():
    assert is_snapshot_bytes(_head(1)) and is_snapshot_bytes(_head(1) + b"rest")   # 9 bytes: just enough
    assert not is_snapshot_bytes(_head(1)[:8])                                     # 8: too short
    assert not is_snapshot_bytes(_head(0))                                         # empty header
    assert is_snapshot_bytes(_head(MAX_HEADER)) and not is_snapshot_bytes(_head(MAX_HEADER + 1))
    assert not is_snapshot_bytes(_head(5, b"["))                                   # header must be an object


def test_the_format_is_told_by_the_magic_with_each_bound_named():
    # n = 0: not ours, so the pickle check speaks; n = 1: ours, so the snapshot loader reads it and names its fault
    with pytest.raises(NetworkLoadError, match=r"^f is neither one of our snapshots nor a network pickle$"):
        load_network_bytes(_head(0) + b"}", source="f")
    with pytest.raises(SnapshotError, match=r"^f: snapshot header is not valid JSON \(JSONDecodeError\)"):
        load_network_bytes(_head(1), source="f")
    with pytest.raises(NetworkLoadError, match=r"^f is neither one of our snapshots nor a network pickle$"):
        load_network_bytes(_head(MAX_HEADER + 1), source="f")
    assert load_network_bytes(_snapshot("null"), source="f")["augment_pipe"] is None


# ------------------------------------------------------------------------------------------- framing bounds

def test_framing_length_bounds_each_with_its_reason():
    assert _refused(b"\0" * 7) == "x.safetensors: file is 7 bytes long, too short to be a snapshot (truncated?)"
    cut = "x.safetensors: snapshot header is cut off or corrupt (truncated file?)"
    assert _refused(b"\0" * 8) == cut                              # 8 bytes: long enough, but a zero-length header
    assert _refused(_head(1)).startswith("x.safetensors: snapshot header is not valid JSON")   # n = 1 is read
    good = _snapshot("null")
    assert _refused(good[:-1]) == cut                              # one byte short of 8 + n
    assert load_snapshot_bytes(good)["augment_pipe"] is None      # exactly 8 + n: loads


def test_header_length_limit_is_inclusive(monkeypatch):
    header = b'{"__metadata__":{}}'
    monkeypatch.setattr(checkpoint, "_MAX_HEADER", len(header))
    at_limit = _refused(_frame(header))                             # n == limit: framing passes, format check speaks
    assert at_limit == f"x.safetensors: not a {SNAPSHOT_FORMAT} file (format='None')"
    monkeypatch.setattr(checkpoint, "_MAX_HEADER", len(header) - 1)
    assert _refused(_frame(header)) == "x.safetensors: snapshot header is cut off or corrupt (truncated file?)"


# ----------------------------------------------------------------------------------------- tensor spec schema

GOOD_SPEC = {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}


def test_a_tensor_spec_with_zero_offsets_and_a_zero_dim_loads():
    payload = struct.pack("<f", 1.5)
    tensors = {"G.a": GOOD_SPEC, "G.b": {"dtype": "F32", "shape": [0, 3], "data_offsets": [4, 4]}}
    assert load_snapshot_bytes(_snapshot(tensors=tensors, payload=payload))["G"] is None


@pytest.mark.parametrize("spec", [
    [1, 2],
    {"shape": [1], "data_offsets": [0, 4]},
    {"dtype": 1, "shape": [1], "data_offsets": [0, 4]},
    {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]},
    {"dtype": "F32", "shape": [1], "data_offsets": "0,4"},
    {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 4]},
    {"dtype": "F32", "shape": [1], "data_offsets": [4]},
    {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]},
    {"dtype": "F32", "shape": [1], "data_offsets": [-1, 4]},
    {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]},
    {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]},
    {"dtype": "F32", "shape": [1], "data_offsets": [False, 4]},
], ids=["list", "no-dtype", "dtype-int", "shape-str", "offsets-str", "offsets-3", "offsets-1", "shape-neg",
        "offset-neg", "shape-float", "shape-bool", "offset-bool"])
def test_each_malformed_tensor_spec_is_refused_alone(spec):
    data = _snapshot(tensors={"G.a": spec}, payload=b"\0" * 4)
    assert _refused(data) == ("x.safetensors: snapshot header entry 'G.a' is not a tensor spec (dtype, shape, "
                              "data_offsets); the file is corrupt")


@pytest.mark.parametrize("meta", [["format"], {"format": 1}])
def test_metadata_that_is_not_a_map_of_strings_is_refused(meta):
    header = json.dumps({"__metadata__": meta}).encode()
    assert _refused(_frame(header)) == ("x.safetensors: snapshot header field '__metadata__' is not a map of "
                                        "strings; the file is corrupt")


def test_a_header_that_is_not_an_object_is_refused():
    assert _refused(_frame(b"[1]")) == "x.safetensors: snapshot header is not a JSON object; the file is corrupt"


def test_loaded_pipe_p_is_a_tensor_copy_of_the_record():
    pipe = load_snapshot_bytes(_snapshot(json.dumps({"kwargs": {"xflip": 1}, "p": 0.375})))["augment_pipe"]
    assert torch.equal(pipe.p, torch.tensor(0.375))


def test_a_bad_tensor_spec_after_the_metadata_entry_is_still_refused():
    meta_first = {"__metadata__": {"format": SNAPSHOT_FORMAT}, "G.a": {"dtype": "F32", "shape": [1]}}
    assert _refused(_frame(json.dumps(meta_first).encode())) == (
        "x.safetensors: snapshot header entry 'G.a' is not a tensor spec (dtype, shape, data_offsets); the file is "
        "corrupt")


def test_a_long_tensor_name_is_cut_to_60_characters_in_the_reason():
    name = "G." + "n" * 58 + "TAIL"                 # 64 characters: the first 60 are named
    msg = _refused(_snapshot(tensors={name: {"dtype": "F32", "shape": [1]}}, payload=b"\0" * 4))
    assert msg == ("x.safetensors: snapshot header entry 'G." + "n" * 58 + "' is not a tensor spec (dtype, shape, "
                   "data_offsets); the file is corrupt")


# --------------------------------------------------------------- copy_state_into (resume, reference and TF loaders)

class _Refused(ValueError):
    pass


def test_copy_state_into_refuses_a_wrong_shape_with_the_callers_error_and_name():
    module = torch.nn.Linear(2, 3)
    state = {"weight": torch.zeros(3, 3), "bias": torch.zeros(3)}
    with pytest.raises(_Refused) as info:
        checkpoint.copy_state_into(module, state, what="net.pkl: G", error=_Refused)
    assert str(info.value) == "net.pkl: G: tensor weight has shape (3, 3), the network expects (3, 2)"


def test_copy_state_into_lets_kept_names_keep_their_value_and_copies_the_rest():
    module = torch.nn.Linear(2, 3)
    bias = module.bias.detach().clone()
    checkpoint.copy_state_into(module, {"weight": torch.ones(3, 2)}, what="G", error=_Refused, keep=("bias",))
    assert torch.equal(module.weight, torch.ones(3, 2)) and torch.equal(module.bias, bias)
    missing = r"^G: stored tensors do not match .*: missing 1 \(e\.g\. bias\)$"
    with pytest.raises(checkpoint.NetworkLoadError, match=missing):
        checkpoint.copy_state_into(torch.nn.Linear(2, 3), {"weight": torch.ones(3, 2)}, what="G")
