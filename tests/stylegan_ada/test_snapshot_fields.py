"""Snapshot metadata fields, messages and devices, on hand-crafted files whose checksums are right.

The files are framed here with the format's published rules (safetensors framing; payload_sha256 of the bytes after
the header; header_sha256 of the header in canonical JSON without that field), not with the writer under test, so
each field can be given a value the writer would never produce, and each refusal is checked word for word.
"""
from __future__ import annotations

import hashlib
import json
import re

import pytest
import torch
from safetensors.torch import save as st_save

from stylegan_ada.checkpoint import (SNAPSHOT_FORMAT, SnapshotError, finalize, load_snapshot, load_snapshot_bytes,
                                     read_snapshot_metadata, save_snapshot)
from tests.support.networks import tiny_networks

GOOD = {"format": SNAPSHOT_FORMAT, "G_kwargs": "null", "D_kwargs": "null", "has_G_ema": "false",
        "augment_pipe": "null", "training_set_kwargs": "null", "extra": "{}"}


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def craft(meta: dict[str, str], *, tensors: dict | None = None, edit=None) -> bytes:
    """A snapshot with metadata ``meta`` and right checksums; ``edit(header)`` may change the header first."""
    raw = st_save(tensors if tensors is not None else {"extra.x": torch.arange(4, dtype=torch.float32)},
                  metadata=meta)
    n = int.from_bytes(raw[:8], "little")
    header, payload = json.loads(raw[8:8 + n]), raw[8 + n:]
    if edit:
        edit(header)
    header["__metadata__"]["payload_sha256"] = _sha(payload)
    canonical = {**header, "__metadata__": {k: v for k, v in header["__metadata__"].items() if k != "header_sha256"}}
    header["__metadata__"]["header_sha256"] = _sha(json.dumps(canonical, sort_keys=True,
                                                             separators=(",", ":")).encode())
    head = json.dumps(header).encode()
    return len(head).to_bytes(8, "little") + head + payload


def refused(data: bytes) -> str:
    with pytest.raises(SnapshotError) as info:
        load_snapshot_bytes(data)
    return str(info.value)


def test_the_crafted_reference_file_loads() -> None:
    out = load_snapshot_bytes(craft(GOOD))
    assert out == {"G": None, "D": None, "G_ema": None, "augment_pipe": None, "training_set_kwargs": None,
                   "extra": {}}


def test_absent_optional_fields_read_as_null_and_has_g_ema_as_false(tmp_path) -> None:
    meta = {"format": SNAPSHOT_FORMAT, "G_kwargs": "null"}  # D_kwargs, has_G_ema, pipe, set kwargs, extra absent
    out = load_snapshot_bytes(craft(meta))
    assert out["training_set_kwargs"] is None and out["extra"] == {} and out["G_ema"] is None
    path = tmp_path / "s.safetensors"
    path.write_bytes(craft({**GOOD, "has_G_ema": "null", "extra": '{"kimg": 4}'}))
    meta = read_snapshot_metadata(path)
    assert meta["has_G_ema"] is False  # an older writer's null: no G_ema
    assert meta["extra"] == {"kimg": 4} and meta["G_kwargs"] is None  # decoded, not the JSON text
    assert meta["format"] == SNAPSHOT_FORMAT and len(meta["payload_sha256"]) == 64


@pytest.mark.parametrize("key, text, expected", [
    ("G_kwargs", "[1, 2]", "metadata field 'G_kwargs' must be an object or null, got list"),
    ("extra", '"x"', "metadata field 'extra' must be an object or null, got str"),
    ("has_G_ema", '"yes"', "metadata field 'has_G_ema' must be true/false, got str"),
    ("has_G_ema", "1", "metadata field 'has_G_ema' must be true/false, got int"),
    ("augment_pipe", "true", "metadata field 'augment_pipe' must be an object or null, got bool"),
    ("training_set_kwargs", "{bad", "metadata field 'training_set_kwargs' is not valid JSON (the file is corrupt)"),
])
def test_a_field_of_the_wrong_type_is_refused_naming_it(key: str, text: str, expected: str) -> None:
    assert refused(craft({**GOOD, key: text})) == f"snapshot: {expected}"


def test_the_size_and_nesting_bounds_apply_to_every_field() -> None:
    deep = "[" * 40 + "]" * 40
    assert refused(craft({**GOOD, "extra": '{"a": ' + deep + "}"})) == \
        "snapshot: metadata field 'extra': nested more than 32 levels deep; refusing it"


def test_each_framing_refusal_says_what_is_wrong() -> None:
    other = craft({**GOOD, "format": "someone-else-v9" + "x" * 80})
    assert refused(other) == f"snapshot: not a {SNAPSHOT_FORMAT} file (format={'someone-else-v9' + 'x' * 45!r})"
    assert refused(craft({k: v for k, v in GOOD.items() if k != "format"})) == \
        f"snapshot: not a {SNAPSHOT_FORMAT} file (format='None')"
    good = craft(GOOD)
    assert refused(good + b"\0" * 8) == "snapshot: tensor payload is 24 bytes, the header says 16 (truncated file?)"
    flipped = bytearray(good)
    flipped[-1] ^= 1
    assert refused(bytes(flipped)) == "snapshot: tensor payload checksum does not match (the file is corrupt)"
    n = int.from_bytes(good[:8], "little")
    header = json.loads(good[8:8 + n])
    header["__metadata__"]["extra"] = '{"kimg": 5}'
    head = json.dumps(header).encode()
    tampered = len(head).to_bytes(8, "little") + head + good[8 + n:]
    assert refused(tampered) == "snapshot: header checksum does not match (the metadata or tensor table is corrupt)"


def test_data_safetensors_cannot_read_is_refused_as_unreadable() -> None:
    def bad_dtype(header: dict) -> None:
        header["extra.x"]["dtype"] = "Q99"

    message = refused(craft(GOOD, edit=bad_dtype))
    assert message.startswith("snapshot: unreadable safetensors data (") and "\n" not in message


def test_messages_name_the_path_and_what_is_there(tmp_path) -> None:
    missing = tmp_path / "none.safetensors"
    with pytest.raises(SnapshotError, match=re.escape(f"snapshot {missing} does not exist")):
        load_snapshot(missing)
    with pytest.raises(SnapshotError, match=re.escape(f"snapshot {tmp_path} is a directory, not a file")):
        load_snapshot(tmp_path)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(craft({**GOOD, "extra": "[]"}))
    with pytest.raises(SnapshotError) as info:
        load_snapshot(bad)
    assert str(info.value) == f"{bad}: metadata field 'extra' must be an object or null, got list"


def test_writer_refuses_modules_it_cannot_describe(tmp_path) -> None:
    nets = tiny_networks()
    plain = torch.nn.Linear(2, 2)  # no init_kwargs: nothing says how to rebuild it
    with pytest.raises(TypeError, match="^G has no init_kwargs dict; cannot record how to rebuild it$"):
        save_snapshot(tmp_path / "a.safetensors", G=plain, G_ema=torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="^D has no init_kwargs dict; cannot record how to rebuild it$"):
        save_snapshot(tmp_path / "b.safetensors", G=nets["G"], D=plain)
    other = tiny_networks()["G"]
    other.init_kwargs = {**other.init_kwargs, "z_dim": 7}
    with pytest.raises(ValueError, match="^G_ema must be built with the same kwargs as G$"):
        save_snapshot(tmp_path / "c.safetensors", G=nets["G"], G_ema=other)
    assert not list(tmp_path.iterdir())


def test_written_payload_is_8_byte_aligned(tmp_path) -> None:
    nets = tiny_networks()
    for extra in ({}, {"k": "x"}, {"k": "xy"}, {"k": "xyz"}):  # header lengths that differ mod 8
        path = tmp_path / "s.safetensors"
        save_snapshot(path, G=nets["G"], extra=extra)
        data = path.read_bytes()
        assert (8 + int.from_bytes(data[:8], "little")) % 8 == 0


def test_networks_go_to_the_device_asked_for(tmp_path) -> None:
    # the meta device stands in for a GPU: a loader that ignored the device would leave them on the CPU
    from stylegan_ada.augment_pipe import AugmentPipe

    nets = tiny_networks()
    path = tmp_path / "s.safetensors"
    save_snapshot(path, **nets, augment_pipe=AugmentPipe(xflip=1))
    for out in (load_snapshot(path, "meta"), load_snapshot_bytes(path.read_bytes(), "meta")):
        for key in ("G", "D", "G_ema", "augment_pipe"):
            tensors = [*out[key].parameters(), *out[key].buffers()]
            assert tensors and all(t.device.type == "meta" for t in tensors), key
    on_cpu = load_snapshot(path)
    assert all(p.device.type == "cpu" for p in on_cpu["G"].parameters())


def test_finalize_defaults_to_cpu_eval_and_frozen() -> None:
    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout()).train()
    out = finalize(module)
    assert out is module and not out.training
    assert all(p.device.type == "cpu" and not p.requires_grad for p in out.parameters())
    assert finalize(torch.nn.Linear(2, 2), "meta").weight.device.type == "meta"
    assert finalize(None) is None
