"""Reference PyTorch and TF-era network pickles load into our modules and reproduce the reference's outputs."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

import stylegan_ada
from stylegan_ada.legacy import tf_convert
from stylegan_ada.legacy.persistence import collect_state, plain
from stylegan_ada.legacy.unpickler import restricted_load
from tests.support.paths import FIXTURES

REF_PKL = FIXTURES / "tiny_reference_format.pkl"
TF_PKL = FIXTURES / "tiny_tf_format.pkl"
TOL = 1e-4


@pytest.fixture(scope="module")
def nets() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "tiny_nets.npz") as f:
        return dict(f)


@pytest.fixture(scope="module")
def io_ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "tiny_io.npz") as f:
        return dict(f)


def _ref_state(nets: dict, prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) + 1:]: v for k, v in nets.items() if k.startswith(prefix + ".")}


def _assert_same_state(ours: dict, ref: dict, skip_suffix: str | None = None) -> None:
    expected = {k for k in ref if not (skip_suffix and k.endswith(skip_suffix))}
    assert set(ours) == expected
    for k in expected:
        a = np.asarray(ours[k])
        assert a.shape == ref[k].shape, k
        assert np.array_equal(a, ref[k]), k


def test_reference_pickle_state_matches_fixture_exactly(nets):
    raw = restricted_load(open(REF_PKL, "rb"))
    for key, ref in (("G", "G"), ("D", "D"), ("G_ema", "G")):
        state = {k: v.numpy() for k, v in collect_state(raw[key]).items()}
        _assert_same_state(state, _ref_state(nets, ref))
    kwargs = json.loads((FIXTURES / "tiny_kwargs.json").read_text())
    assert plain(raw["G"].state["_init_kwargs"]) == kwargs["G"]
    assert plain(raw["D"].state["_init_kwargs"]) == kwargs["D"]


def test_tf_conversion_matches_fixture_exactly(nets):
    tf_G, tf_D, tf_Gs = restricted_load(open(TF_PKL, "rb"))
    for net, ref, what in ((tf_G, "G", "generator"), (tf_Gs, "G", "generator"), (tf_D, "D", "discriminator")):
        expected = _ref_state(nets, ref)
        state = tf_convert.convert_state(tf_convert.collect_tf_params(net), list(expected), what)
        _assert_same_state(state, expected, skip_suffix="resample_filter")  # fixed buffers, not stored by TF
    g_kwargs = tf_convert.generator_kwargs(tf_G)
    assert g_kwargs["synthesis_kwargs"]["channel_base"] == 1024  # TF fmap_base 512 is half our channel_base


def _outputs(data: dict, io_ref: dict, key: str) -> dict[str, torch.Tensor]:
    G, D = data[key], data["D"]
    z = torch.from_numpy(io_ref["z"])
    with torch.no_grad():
        ws = G.mapping(z, None)
        ws_t = G.mapping(z, None, truncation_psi=0.5)
        return {"ws": ws, "ws_trunc05": ws_t, "img": G.synthesis(ws, noise_mode="const"),
                "img_trunc05": G.synthesis(ws_t, noise_mode="const"),
                "logits": D(torch.from_numpy(io_ref["img"]), None)}


@pytest.mark.parametrize("path", [REF_PKL, TF_PKL], ids=["reference", "tf"])
def test_pickle_reproduces_reference_outputs(path, io_ref):
    data = stylegan_ada.load_network_pkl(path)
    assert set(data) == {"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}
    assert data["augment_pipe"] is None
    for key in ("G", "G_ema"):
        for name, value in _outputs(data, io_ref, key).items():
            diff = float((value - torch.from_numpy(io_ref[name])).abs().max())
            assert diff <= TOL, (key, name, diff)


@pytest.mark.parametrize("path", [REF_PKL, TF_PKL], ids=["reference", "tf"])
def test_loaded_modules_are_eval_cpu_frozen(path):
    data = stylegan_ada.load_network_pkl(path)
    assert data["G"] is not data["G_ema"]
    for key in ("G", "D", "G_ema"):
        module = data[key]
        assert not module.training and all(not m.training for m in module.modules())
        tensors = list(module.parameters()) + list(module.buffers())
        assert all(t.device.type == "cpu" for t in tensors)
        assert all(not p.requires_grad for p in module.parameters())


def test_training_set_kwargs_and_file_object_input():
    with open(REF_PKL, "rb") as f:
        data = stylegan_ada.load_network_pkl(f)
    assert data["training_set_kwargs"] == {"path": "fixture.zip", "resolution": 32, "use_labels": False}
    tf_data = stylegan_ada.load_network_pkl(io.BytesIO(TF_PKL.read_bytes()))
    assert tf_data["training_set_kwargs"] is None


@pytest.mark.parametrize("content, message", [
    (b"", "neither"),
    (b"PK\x03\x04rest-of-a-zip", "zip archive"),
    (b"hello world, not a network", "neither"),
])
def test_non_network_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(stylegan_ada.NetworkLoadError, match=message) as info:
        stylegan_ada.load_network_pkl(path)
    assert "\n" not in str(info.value)


def test_truncated_reference_pickle_is_a_clean_error(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(REF_PKL.read_bytes()[:200_000])
    with pytest.raises(stylegan_ada.NetworkLoadError, match="cut.pkl"):
        stylegan_ada.load_network_pkl(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(stylegan_ada.NetworkLoadError, match="does not exist"):
        stylegan_ada.load_network_pkl(tmp_path / "nope.pkl")


def test_tf_pickle_with_unknown_setting_is_refused_by_name():
    tf_G, _, _ = restricted_load(open(TF_PKL, "rb"))
    tf_G.state["static_kwargs"] = {**tf_G.static_kwargs, "fancy_new_thing": 3}
    with pytest.raises(stylegan_ada.NetworkLoadError, match="fancy_new_thing"):
        tf_convert.generator_from_tf(tf_G)


def test_import_stylegan_ada_stays_light():
    import subprocess
    import sys

    code = "import sys, stylegan_ada; print('torch' in sys.modules, 'load_network_pkl' in dir(stylegan_ada))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
    assert stylegan_ada.load_network_pkl.__module__ == "stylegan_ada.legacy.loader"
