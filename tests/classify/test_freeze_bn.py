"""--mode freeze with --freeze-bn eval (frozen batch-norm statistics, dropout off, cached features) vs train
(tutorial-style: BN running statistics update, dropout on, the network runs every epoch)."""
from __future__ import annotations

import pytest
import torch

from classify.archs import build_model
from classify.head_only import can_cache_features
from classify.trainer import TrainConfig, fit, training_mode

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(n: int = 8) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(0)
    # inputs far from N(0, 1), so updated running statistics move visibly away from their initial 0 / 1
    return torch.utils.data.TensorDataset(3 + 2 * torch.randn(n, 3, 16, 16, generator=g), torch.arange(n) % 2)


def _bn_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k or "num_batches" in k}


def _frozen_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in model.named_parameters() if not p.requires_grad}


@pytest.mark.parametrize("freeze_bn", ["eval", "train"])
def test_freeze_bn_mode_decides_whether_bn_statistics_update_and_dropout_is_on(freeze_bn):
    torch.manual_seed(0)
    built = build_model("small_cnn", 2, "freeze", "none")
    cfg = TrainConfig(epochs=1, batch_size=4, lr=0.01, freeze_bn=freeze_bn)
    bn_before, frozen_before = _bn_state(built.model), _frozen_weights(built.model)
    head_before = built.model.classifier[1].weight.detach().clone()
    fit(built, _data(), _data(4), cfg, progress=False)
    bn_after = _bn_state(built.model)
    changed = [k for k in bn_before if not torch.equal(bn_before[k], bn_after[k])]
    if freeze_bn == "eval":
        assert changed == []
    else:   # every BN layer saw the batches: its running mean/var and batch count moved
        assert len(changed) == len(bn_before) and bn_after["features.0.1.num_batches_tracked"] == 2
    # either way the frozen weights stay as they were and the head trains
    assert all(torch.equal(v, dict(built.model.named_parameters())[k]) for k, v in frozen_before.items())
    assert not torch.equal(head_before, built.model.classifier[1].weight)
    training_mode(built, cfg)
    dropout, bn = built.model.classifier[0], built.model.features[0][1]
    assert dropout.training is bn.training is (freeze_bn == "train")
    assert built.model.classifier[1].training     # the head trains in both


def test_only_eval_freezing_uses_the_cached_feature_path():
    class Plain:
        augment = pixel_augment = None

    assert can_cache_features("freeze", "eval", Plain(), 0.0)
    assert not can_cache_features("freeze", "train", Plain(), 0.0)
    assert not can_cache_features("whole", "eval", Plain(), 0.0)
    assert not can_cache_features("freeze", "eval", Plain(), 0.2)
