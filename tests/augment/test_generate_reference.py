"""`augment generate` against the reference's own generate.py outputs (fixture generate_io.npz, see its README).

The fixture holds, for the tiny G and conditional Gc, seeds 0, 1, 42, 99999, 100000, truncation 1.0/0.7 and noise
const/none: the float output of ``G(RandomState(seed).randn(1, z_dim), one-hot label, psi, noise_mode)`` and the
uint8 image the reference saves (``x * 127.5 + 128``, clamped, truncated, per channel). Our fakes are the channel
mean through the same mapping, so where no channel clips they lie within one grey level of the mean of the
reference's three uint8 channels, and their average offset from it is ~0 (a mapping off by half a level is not).
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from augment.cli import cli
from augment.render import generator_output, synthesize, to_gray_uint8
from augment.synthetic import read_manifest
from tests.support.paths import FIXTURES
from tests.support.workspaces import make_image_workspace
from tests.support.networks import fixture_network, save_reference_snapshot
from tests.support.workspaces import snapshot_path

SETTINGS = [(psi, noise) for psi in ("1.0", "0.7") for noise in ("const", "none")]
NETS = [("G", None), ("Gc", 0), ("Gc", 1), ("Gc", 2)]
# tools/gpu_checks.sh sets cuda: the pipelined CUDA path (non-blocking copy, event) against the same reference
SYNTH_DEVICE = os.environ.get("GENERATE_TEST_DEVICE", "cpu")


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "generate_io.npz") as f:
        return dict(f)


def _key(net: str, label: int | None, psi: str, noise: str) -> str:
    return f"{net}/class{'-' if label is None else label}/psi{psi}/noise-{noise}"


def assert_reference_gray(gray: np.ndarray, ref_float: np.ndarray, ref_uint8: np.ndarray) -> None:
    """``gray`` (N, H, W) is the reference's pixel mapping of the channel mean of ``ref_float`` / ``ref_uint8``."""
    gray = np.asarray(gray).astype(float)
    assert gray.shape == ref_uint8.shape[:3]
    # where no channel clips, the mean of the reference's own uint8 channels is within one grey level ...
    inside = ((ref_uint8 > 0) & (ref_uint8 < 255)).all(axis=-1)
    assert inside.sum() >= 50  # enough unclipped pixels to see an offset
    diff = gray[inside] - ref_uint8.mean(axis=-1)[inside]
    assert np.abs(diff).max() <= 1
    assert abs(diff.mean()) < 0.2  # truncation errors average out; a +127.5 mapping sits ~0.5 below
    # ... and everywhere the reference formula applied to the channel mean (float rounding of the mean: one level)
    expected = np.clip(np.floor(ref_float.astype(np.float64).mean(axis=1) * 127.5 + 128), 0, 255)
    assert np.abs(gray - expected).max() <= 1


@pytest.mark.parametrize("net,label", NETS)
def test_generator_output_is_the_reference_float(ref, net, label):
    G = fixture_network(net)
    seeds = [int(s) for s in ref["seeds"]]
    for psi, noise in SETTINGS:
        with torch.no_grad():
            out = generator_output(G, seeds, label=label, truncation_psi=float(psi), noise_mode=noise, device="cpu")
        expected = ref[_key(net, label, psi, noise) + "/float"]
        assert out.shape == expected.shape
        assert float((out - torch.from_numpy(expected)).abs().max()) <= 1e-4, (psi, noise)


def test_pixel_mapping_is_the_references(ref):
    for net, label in NETS:
        for psi, noise in SETTINGS:
            key = _key(net, label, psi, noise)
            x, u8 = ref[key + "/float"], ref[key + "/uint8"]
            for ch in range(3):  # one channel: exactly the reference's uint8 of that channel
                assert np.array_equal(to_gray_uint8(torch.from_numpy(x[:, ch:ch + 1])).numpy(), u8[..., ch]), key
            assert_reference_gray(to_gray_uint8(torch.from_numpy(x)).numpy(), x, u8)
            half = torch.from_numpy(x).half()  # an fp16 output is mapped in float32, not in half precision
            assert torch.equal(to_gray_uint8(half), to_gray_uint8(half.float()))


@pytest.mark.parametrize("net,label", NETS)
def test_synthesize_reproduces_the_reference_images(ref, net, label):
    G = fixture_network(net).to(SYNTH_DEVICE)
    seeds = [int(s) for s in ref["seeds"]]
    for psi, noise in SETTINGS:
        key = _key(net, label, psi, noise)
        got = list(synthesize(G, seeds, label=label, truncation_psi=float(psi), noise_mode=noise, batch=2,
                              device=SYNTH_DEVICE))
        assert [s for chunk, _ in got for s in chunk] == seeds
        assert_reference_gray(np.concatenate([g for _, g in got]), ref[key + "/float"], ref[key + "/uint8"])


def _generate(ws, *args):
    result = CliRunner().invoke(cli, ["generate", "-w", str(ws.root), "-q", *args])
    assert result.exit_code == 0, result.output


def _png(ws, cls: str, seed: int) -> np.ndarray:
    with Image.open(ws.synthetic_dir / cls / f"seed{seed:06d}.png") as im:
        a = np.asarray(im.convert("RGB"))
    assert (a == a[..., :1]).all()  # 3 equal channels
    return a[None, ..., 0]


def _check(ws, ref, items: list[tuple[str, int, str]]) -> None:
    """The PNGs of (class, seed, fixture key) items, taken together, are the reference's images of those seeds."""
    index = [int(s) for s in ref["seeds"]].index
    pick = lambda key, seed, kind: ref[f"{key}/{kind}"][index(seed)]  # noqa: E731
    assert_reference_gray(np.concatenate([_png(ws, cls, seed) for cls, seed, _ in items]),
                          np.stack([pick(key, seed, "float") for _, seed, key in items]),
                          np.stack([pick(key, seed, "uint8") for _, seed, key in items]))


def test_command_writes_the_reference_images_at_the_documented_seeds(ref, tmp_path):
    ws = make_image_workspace(tmp_path / "ws", ("a", "b"), resolution=32)
    for cls in ("a", "b"):
        save_reference_snapshot(snapshot_path(ws, cls), "G", extra={"class": cls, "kimg": 4})
    _generate(ws, "--n", "2")  # seed k of class c (workspace order) is c * 100000 + k
    assert [(r.cls, r.seed) for r in read_manifest(ws.synthetic_dir)] == [
        ("a", 0), ("a", 1), ("b", 100000), ("b", 100001)]
    _check(ws, ref, [(cls, seed, _key("G", None, "1.0", "const")) for cls, seed in (("a", 0), ("a", 1), ("b", 100000))])
    _generate(ws, "--seeds", "42,99999", "--trunc", "0.7", "--noise-mode", "none")
    _check(ws, ref, [(cls, seed, _key("G", None, "0.7", "none")) for cls in ("a", "b") for seed in (42, 99999)])


def test_conditional_command_uses_the_recorded_label_order(ref, tmp_path):
    ws = make_image_workspace(tmp_path / "ws", ("a", "b", "c"), resolution=32)
    save_reference_snapshot(snapshot_path(ws, None, "00000-cond"), "Gc",
                            training_set_kwargs={"cond": True, "class_names": ["c", "a", "b"]})
    _generate(ws, "--cond", "--n", "1")  # a: label 1, seed 0; b: label 2, seed 100000
    _check(ws, ref, [("a", 0, _key("Gc", 1, "1.0", "const")), ("b", 100000, _key("Gc", 2, "1.0", "const"))])
    _generate(ws, "--cond", "--seeds", "1", "--trunc", "0.7", "--noise-mode", "none")
    _check(ws, ref, [(cls, 1, _key("Gc", label, "0.7", "none")) for cls, label in (("a", 1), ("b", 2), ("c", 0))])


@pytest.mark.parametrize("size", [16, 64])
def test_other_resolutions_are_resized_like_pil_bicubic(ref, size):
    """A generator of another resolution than the workspace: its gray (float) image resized like `augment prepare`
    resizes real images (PIL's bicubic), then the reference mapping."""
    from PIL import Image as PILImage

    key = _key("G", None, "1.0", "const")
    got = np.concatenate([g for _, g in synthesize(fixture_network("G"), [int(s) for s in ref["seeds"]],
                                                   label=None, truncation_psi=1.0, noise_mode="const", batch=5,
                                                   device="cpu", size=size)])
    mean = ref[key + "/float"].astype(np.float64).mean(axis=1).astype(np.float32)
    pil = np.stack([np.asarray(PILImage.fromarray(a, mode="F").resize((size, size), PILImage.BICUBIC)) for a in mean])
    expected = np.clip(np.floor(pil.astype(np.float64) * 127.5 + 128), 0, 255)
    assert got.shape == (5, size, size) and np.abs(got - expected).max() <= 1
