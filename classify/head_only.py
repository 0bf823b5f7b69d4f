"""Freeze mode without recomputing the frozen network: run it once, train the head on the cached features.

In ``freeze`` mode with ``--freeze-bn eval`` the backbone is fixed and in eval mode, so (without training-time augmentation) its output for an
image never changes. We record the input of the "cut" module (the head, or for SqueezeNet the classifier block that
holds it) once per image and train a :class:`HeadOnly` module on those features. The head's parameters are shared
with the full model, which afterwards predicts exactly as the head-only module does.
"""
from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

from classify.archs import BuiltModel, set_train_mode

# Where the features are taken when it is not the head itself (its input is a feature map there).
CUT_POINTS = {"squeezenet1_0": "classifier"}


def cut_point(built: BuiltModel) -> str:
    return CUT_POINTS.get(built.spec.name, built.head_names[0])


class HeadOnly(nn.Module):
    """cut module (+ flatten for SqueezeNet): cached features -> logits."""

    def __init__(self, built: BuiltModel):
        super().__init__()
        self.cut = built.model.get_submodule(cut_point(built))
        self.flatten = built.spec.name in CUT_POINTS

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.cut(features)
        return torch.flatten(out, 1) if self.flatten else out


def head_only_model(built: BuiltModel) -> BuiltModel:
    """A BuiltModel around :class:`HeadOnly` that trains/evaluates like ``built`` in freeze mode."""
    cut = cut_point(built)
    heads = tuple("cut" + h[len(cut):] for h in built.head_names if h == cut or h.startswith(cut + "."))
    return BuiltModel(HeadOnly(built), built.spec, "freeze", built.pretrained, heads, dict(built.info))


def can_cache_features(mode: str, freeze_bn: str, train_set: Any, mixup: float) -> bool:
    """Whether the frozen network's output per image is fixed, so the head can train on cached features: freeze mode
    with the frozen part in eval mode (``--freeze-bn eval``), and no augmentation or mixup (inputs that change every
    epoch must go through the network each time). ``--freeze-bn train`` updates batch-norm statistics and keeps
    dropout on, so the network runs every epoch."""
    return (mode == "freeze" and freeze_bn == "eval" and not train_set.augment and not train_set.pixel_augment
            and mixup <= 0)


def cache_features(built: BuiltModel, dataset: Any, *, batch_size: int, device: str, desc: str = "features",
                   progress: bool = True) -> torch.utils.data.TensorDataset:
    """(features at the cut point, label) for every item of ``dataset``, computed once in eval mode."""
    from tqdm.auto import tqdm

    from classify.trainer import make_loader

    captured: list[torch.Tensor] = []
    hook = built.model.get_submodule(cut_point(built)).register_forward_pre_hook(
        lambda module, args: captured.append(args[0].detach().cpu()))
    labels: list[torch.Tensor] = []
    set_train_mode(built, False)
    try:
        with torch.no_grad():
            for x, y in tqdm(make_loader(dataset, batch_size, shuffle=False), desc=desc, leave=False,
                             file=sys.stderr, disable=not progress, unit="batch"):
                built.model(x.to(device))
                labels.append(torch.as_tensor(y))
    finally:
        hook.remove()
    return torch.utils.data.TensorDataset(torch.cat(captured), torch.cat(labels))
