"""Our TF checkpoint reader: the four musicnn checkpoints read from the wheel zip, and hostile files refused."""
from __future__ import annotations

import hashlib
import re
import zipfile

import numpy as np
import pytest
from tests.support.musicnn import MAGIC, MUSICNN_FIXTURES, block, bundle, crc32c_reference, entry_proto, field_bytes, field_varint, handle, mask, table, wheel_path

from stylegan_ada.musicnn.crc32c import crc32c, masked_crc32c, unmask
from stylegan_ada.musicnn.tf_checkpoint import Checkpoint, CheckpointError, open_checkpoint_in_zip, parse_index

DATA_SHA256 = {"MTT_musicnn": "041f3935e981a65cea739842d30c188d3a7d2adf4410955c8668eb3de4a5acab",
               "MSD_musicnn": "8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6"}
# The VGG of the paper with 128 filters (musicnn.models.vgg): 3x3 kernels, dense over the 2x1x128 last pooling.
VGG_SHAPES = {"1CNN/kernel": (3, 3, 1, 128), **{f"{i}CNN/kernel": (3, 3, 128, 128) for i in range(2, 6)},
              **{f"{i}CNN/bias": (128,) for i in range(1, 6)}, "dense/kernel": (256, 50), "dense/bias": (50,),
              "batch_normalization/gamma": (1,), **{f"batch_normalization_{i}/moving_variance": (128,)
                                                    for i in range(1, 6)}}


def fixture_variables(model: str) -> dict[str, tuple[int, ...]]:
    """name -> shape from the fixture's variable list (written from the TF graph)."""
    out = {}
    for line in (MUSICNN_FIXTURES / f"variables_{model}.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape = line.split("\t")[:2]
        out[name] = tuple(int(v) for v in re.findall(r"\d+", shape))
    return out


@pytest.fixture(scope="module")
def wheel_zip():
    with zipfile.ZipFile(wheel_path()) as zf:
        yield zf


def test_crc32c_matches_the_definition_and_rfc3720_vectors():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA and crc32c(b"\xff" * 32) == 0x62A8AB43   # RFC 3720 B.4
    data = np.random.default_rng(0).integers(0, 256, 70_001, dtype=np.uint8).tobytes()  # the chunked path
    assert crc32c(data) == crc32c_reference(data)
    assert unmask(masked_crc32c(data)) == crc32c(data) and masked_crc32c(data) == mask(crc32c(data))


@pytest.mark.parametrize("model", ["MTT_musicnn", "MSD_musicnn"])
def test_musicnn_checkpoints_hold_the_fixture_variables(wheel_zip, model):
    ckpt = open_checkpoint_in_zip(wheel_zip, f"musicnn/{model}/")
    expected = fixture_variables(model)
    shapes = {name: e.shape for name, e in ckpt.entries.items()}
    assert {n: shapes[n] for n in expected} == expected
    # the rest is the optimizer state: Adam slots of every trainable variable, beta powers
    rest = set(shapes) - set(expected)
    assert rest == {f"{n}/Adam{s}" for n in expected if not n.endswith(("moving_mean", "moving_variance"))
                    for s in ("", "_1")} | {"beta1_power", "beta2_power"}
    assert all(ckpt.entries[n].crc32c is not None for n in expected)
    values = ckpt.read_all(sorted(expected))         # every checksum verified on read
    assert all(values[n].shape == expected[n] and values[n].dtype == np.float32 for n in expected)
    assert np.all(values["batch_normalization_9/moving_variance"] > 0)
    raw = wheel_zip.read(f"musicnn/{model}/.data-00000-of-00001")
    assert hashlib.sha256(raw).hexdigest() == DATA_SHA256[model]


@pytest.mark.parametrize("model", ["MTT_vgg", "MSD_vgg"])
def test_vgg_checkpoints_have_the_paper_shapes(wheel_zip, model):
    ckpt = open_checkpoint_in_zip(wheel_zip, f"musicnn/{model}/")
    assert {n: ckpt.entries[n].shape for n in VGG_SHAPES} == VGG_SHAPES
    model_vars = [n for n in ckpt.entries if "Adam" not in n and "power" not in n]
    assert len(model_vars) == 10 + 24 + 2                # 5 convs, 6 batch norms, the dense layer
    assert ckpt.read("dense/kernel").shape == (256, 50)


def _tensors():
    return {"a/kernel": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([7, -1], dtype=np.int32)}


def test_our_encoder_roundtrips_through_the_reader():
    index, data = bundle(_tensors())
    ckpt = Checkpoint(index, [data], "made")
    assert sorted(ckpt.entries) == ["a/kernel", "b"]
    np.testing.assert_array_equal(ckpt.read("a/kernel"), _tensors()["a/kernel"])
    np.testing.assert_array_equal(ckpt.read("b"), [7, -1])


def _refused(index: bytes, data: bytes, match: str) -> None:
    with pytest.raises(CheckpointError, match=match) as info:
        Checkpoint(index, [data], "bad").read_all()
    assert "\n" not in str(info.value)


def test_truncated_or_flipped_index_and_data_are_refused():
    index, data = bundle(_tensors())
    for cut in range(0, len(index), 7):                  # every truncation of the index
        with pytest.raises(CheckpointError):
            parse_index(index[:cut])
    for pos in range(0, len(index) - 8, 3):              # a flipped byte anywhere (the magic is checked apart)
        bad = bytearray(index)
        bad[pos] ^= 0x41
        with pytest.raises(CheckpointError):
            Checkpoint(bytes(bad), [data], "bad").read_all()
    _refused(index, data[:-1], "outside data shard")
    _refused(index, data[:5] + bytes([data[5] ^ 1]) + data[6:], "checksum mismatch for tensor 'a/kernel'")
    _refused(index[:-1] + b"\x00", data, "magic")


def _one_entry(value: bytes, key: bytes = b"t") -> bytes:
    header = field_varint(1, 1)
    return table([(b"", header), (key, value)])


@pytest.mark.parametrize("value, match", [
    (entry_proto(1, [1 << 40, 1 << 20], 0, 8, None), "needs"),                    # shape/size disagree
    (entry_proto(1, [1 << 40, 1 << 20], 0, 1 << 62, None), "outside data shard"),  # 4 EiB claimed
    (entry_proto(1, [1 << 20], 0, 4 << 20, None), "outside data shard"),          # 4 MB claimed, 8 bytes there
    (entry_proto(1, [1] * 40, 0, 4, None), "more than 32 dimensions"),
    (entry_proto(1, [2], (1 << 63) + 5, 8, None), "negative"),
    (entry_proto(99, [2], 0, 8, None), "dtype code 99"),
    (entry_proto(1, [2], 0, 8, None) + field_bytes(7, b""), "sliced"),
    (b"\x08" + b"\xff" * 11, "varint"),                                            # endless varint
    (b"\x0b", "wire type"),                                                        # group wire type
    (entry_proto(1, [2], 0, 8, None, shard=3), "outside data shard 3"),
], ids=["size", "huge", "big", "rank", "negative", "dtype", "sliced", "varint", "wire", "shard"])
def test_hostile_entries_are_refused_without_allocating(value, match):
    _refused(_one_entry(value), bytes(8), match)


def test_hostile_table_structure_is_refused():
    entries = [(b"", field_varint(1, 1)), (b"t", entry_proto(1, [2], 0, 8, None))]
    data = block(entries)
    meta = block([])

    def footer_table(index_block: bytes, data_block: bytes = data) -> bytes:
        off = len(data_block) + len(meta)
        foot = handle(len(data_block), len(meta) - 5) + handle(off, len(index_block) - 5)
        return data_block + meta + index_block + foot + bytes(40 - len(foot)) + MAGIC.to_bytes(8, "little")

    cases = {
        "run into the index block": footer_table(block([(b"u", handle(0, 1 << 50))])),
        "overlap": footer_table(block([(b"s", handle(0, len(data) - 5)), (b"u", handle(0, len(data) - 5))])),
        "checksum mismatch": footer_table(block([(b"u", handle(0, len(data) - 5))], crc_ok=False)),
        "compressed": footer_table(block([(b"u", handle(0, len(data) - 5))], kind=1)),
        "no bundle header": footer_table(block([(b"u", handle(0, len(block(entries[1:])) - 5))]),
                                         block(entries[1:])),
        "not strictly increasing": footer_table(block([(b"u", handle(0, len(block(entries[::-1])) - 5))]),
                                                block(entries[::-1])),
    }
    for match, index in cases.items():
        _refused(index, bytes(8), match)
    # a key that claims to share more bytes than the previous key has
    body = b"\x00\x01\x00a" + b"\x09\x01\x00b" + (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    raw = body + b"\x00" + mask(crc32c_reference(body + b"\x00")).to_bytes(4, "little")
    _refused(footer_table(block([(b"u", handle(0, len(raw) - 5))]), raw), bytes(8), "shares 9 bytes")


def test_zip_members_are_bounded_by_their_declared_size(tmp_path, monkeypatch):
    import stylegan_ada.musicnn.tf_checkpoint as tfc

    index, data = bundle(_tensors())
    path = tmp_path / "w.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m/.index", index)
        zf.writestr("m/.data-00000-of-00001", data + bytes(1000))
    assert sorted(open_checkpoint_in_zip(path, "m/").entries) == ["a/kernel", "b"]
    monkeypatch.setattr(tfc, "MAX_DATA_BYTES", 100)
    with pytest.raises(CheckpointError, match="over the limit"):
        open_checkpoint_in_zip(path, "m/")
    with pytest.raises(CheckpointError, match="not in the archive"):
        open_checkpoint_in_zip(path, "other/")


def test_overlapping_tensors_and_oversized_tables_are_refused(monkeypatch):
    import stylegan_ada.musicnn.tf_checkpoint as tfc

    header = field_varint(1, 1)
    twice = table([(b"", header), (b"a", entry_proto(1, [2], 0, 8, None)), (b"b", entry_proto(1, [2], 4, 8, None))])
    _refused(twice, bytes(12), "overlaps another tensor")        # read_all would cost more than the shard
    index, data = bundle({f"t{i}": np.zeros(2, np.float32) for i in range(3)})
    monkeypatch.setattr(tfc, "MAX_TENSORS", 2)
    _refused(index, data, "more than 2 tensors")
    monkeypatch.setattr(tfc, "MAX_TENSORS", 20000)
    monkeypatch.setattr(tfc, "MAX_KEY_BYTES", 1)
    _refused(index, data, "longer than 1 bytes")
    with pytest.raises(CheckpointError, match="larger than any plausible"):
        parse_index(bytes(tfc.MAX_INDEX_BYTES + 1))
