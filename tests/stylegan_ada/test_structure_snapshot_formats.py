"""One place tells network formats apart, by content: `augment generate`'s model loader agrees with
`stylegan_ada.load_network_pkl` whatever a file is named."""
from __future__ import annotations

import shutil

import pytest
import torch

import stylegan_ada
from augment.trained_models import ModelChoice, SnapshotRef, load_model
from augment.errors import UserError
from tests.support.paths import FIXTURES
from tests.support.networks import save_tiny_snapshot, tiny_generator

REF_PKL = FIXTURES / "tiny_reference_format.pkl"


def _load(path):
    choice = ModelChoice(["a"], [SnapshotRef(path, path.parent, 0, 4000)], conditional=False, origin="test",
                         pick="explicit")
    return load_model(choice, "cpu")


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_reference_pickle_named_like_a_snapshot_loads_as_the_pickle_it_is(tmp_path):
    # Before, a `.safetensors` name sent the bytes to our snapshot reader (SnapshotError) and only `.pkl` to the
    # pickle reader; the choice is now made once, by content, in stylegan_ada.legacy.loader.
    path = tmp_path / "network-snapshot-000004.safetensors"
    shutil.copyfile(REF_PKL, path)
    model = _load(path)
    _same_weights(model.G, stylegan_ada.load_network_pkl(REF_PKL)["G_ema"])


def test_our_snapshot_named_pkl_loads_with_its_recorded_class(tmp_path):
    path = save_tiny_snapshot(tmp_path / "net.pkl", seed=3, extra={"class": "a"})
    model = _load(path)
    assert model.trained_class == "a"
    _same_weights(model.G, tiny_generator(seed=3))


def test_training_state_passed_as_network_is_one_line_refusal(tmp_path):
    path = tmp_path / "training-state-000004.pt"
    torch.save({"x": 1}, path)
    with pytest.raises(UserError, match="zip archive") as info:
        _load(path)
    assert "\n" not in str(info.value)
