"""TensorFlow-era pickles (tuple of ``dnnlib.tflib.network.Network`` states) -> our modules.

Conversion facts follow the reference converter: TF conv kernels are [kh, kw, in, out] (-> [out, in, kh, kw]), dense
weights are [in, out] (-> transposed), the generator's up-sampling convs and skip convs were transposed convolutions
(-> kernels flipped in space), style affine biases were stored minus their init of 1, noise inputs were separate
``noise<i>`` variables of shape [1, 1, r, r], and TF ``fmap_base`` is half of our ``channel_base``.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable

import numpy as np
import torch

from stylegan_ada.checkpoint import NetworkLoadError, copy_state_into
from stylegan_ada.legacy.limits import build_bounded, check_plain
from stylegan_ada.legacy.unpickler import TFNetworkState

_IGNORED_G = ("truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure")
_IGNORED_D = ("structure",)


class _KwargReader:
    """Reads TF static kwargs with defaults and remembers which names were understood."""

    def __init__(self, static_kwargs: dict, ignored: tuple[str, ...]):
        self.tf = dict(static_kwargs)
        self.known = set(ignored)

    def __call__(self, name: str, default: Any = None, if_none: Any = None) -> Any:
        self.known.add(name)
        value = self.tf.get(name, default)
        return if_none if value is None else value

    def check_all_known(self, what: str) -> None:
        unknown = sorted(set(self.tf) - self.known)
        if unknown:
            raise NetworkLoadError(f"TF {what} uses the setting {unknown[0]!r}, which the converter does not know; "
                                   "only StyleGAN2 / StyleGAN2-ADA config-f style networks are supported")


def _check_version(net: Any, what: str) -> None:
    """The parts of a TF network state the converter reads have the expected types."""
    if not isinstance(net, TFNetworkState) or not hasattr(net, "state"):
        raise NetworkLoadError(f"TF pickle: {what} is not a dnnlib.tflib.network.Network state")
    version = net.state.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise NetworkLoadError(f"TF pickle: {what} has no integer network version (got {type(version).__name__})")
    if version < 4:
        raise NetworkLoadError(f"TF pickle: {what} has network version {version}; only version 4 or newer "
                               "(StyleGAN2 and later) can be converted")
    static = net.state.get("static_kwargs")
    if not isinstance(static, dict):
        raise NetworkLoadError(f"TF pickle: {what} static_kwargs is a {type(static).__name__}, not a dict")
    check_plain(static, f"TF {what} static_kwargs", NetworkLoadError)


def _kwargs_from_tf(read: Callable[[TFNetworkState], dict], net: TFNetworkState, what: str) -> dict:
    try:
        return read(net)
    except (TypeError, ValueError) as exc:
        raise NetworkLoadError(f"TF {what}: a static kwarg has the wrong type ({exc})") from None


def generator_kwargs(net: TFNetworkState) -> dict:
    """Our Generator kwargs from a TF generator's static kwargs."""
    kw = _KwargReader(net.static_kwargs, _IGNORED_G)
    kwargs = dict(
        z_dim=kw("latent_size", 512), c_dim=kw("label_size", 0), w_dim=kw("dlatent_size", 512),
        img_resolution=kw("resolution", 1024), img_channels=kw("num_channels", 3),
        mapping_kwargs=dict(
            num_layers=kw("mapping_layers", 8), embed_features=kw("label_fmaps"), layer_features=kw("mapping_fmaps"),
            activation=kw("mapping_nonlinearity", "lrelu"), lr_multiplier=kw("mapping_lrmul", 0.01),
            w_avg_beta=kw("w_avg_beta", 0.995, if_none=1)),
        synthesis_kwargs=dict(
            channel_base=kw("fmap_base", 16384) * 2, channel_max=kw("fmap_max", 512),
            num_fp16_res=kw("num_fp16_res", 0), conv_clamp=kw("conv_clamp"), architecture=kw("architecture", "skip"),
            resample_filter=list(kw("resample_kernel", [1, 3, 3, 1])), use_noise=kw("use_noise", True),
            activation=kw("nonlinearity", "lrelu")),
    )
    kw.check_all_known("generator")
    return kwargs


def discriminator_kwargs(net: TFNetworkState) -> dict:
    """Our Discriminator kwargs from a TF discriminator's static kwargs."""
    kw = _KwargReader(net.static_kwargs, _IGNORED_D)
    act = kw("nonlinearity", "lrelu")
    kwargs = dict(
        c_dim=kw("label_size", 0), img_resolution=kw("resolution", 1024), img_channels=kw("num_channels", 3),
        architecture=kw("architecture", "resnet"), channel_base=kw("fmap_base", 16384) * 2,
        channel_max=kw("fmap_max", 512), num_fp16_res=kw("num_fp16_res", 0), conv_clamp=kw("conv_clamp"),
        cmap_dim=kw("mapping_fmaps"),
        block_kwargs=dict(activation=act, resample_filter=list(kw("resample_kernel", [1, 3, 3, 1])),
                          freeze_layers=kw("freeze_layers", 0)),
        mapping_kwargs=dict(num_layers=kw("mapping_layers", 0), embed_features=kw("mapping_fmaps"),
                            layer_features=kw("mapping_fmaps"), activation=act, lr_multiplier=kw("mapping_lrmul", 0.1)),
        epilogue_kwargs=dict(mbstd_group_size=kw("mbstd_group_size"), mbstd_num_channels=kw("mbstd_num_features", 1),
                             activation=act),
    )
    kw.check_all_known("discriminator")
    return kwargs


def _variables(node: TFNetworkState, where: str) -> list[tuple[str, np.ndarray]]:
    variables = node.state.get("variables")
    if not isinstance(variables, (list, tuple)):
        raise NetworkLoadError(f"TF network {where or 'state'}: variables is a {type(variables).__name__}, not a list")
    for item in variables:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], np.ndarray) and item[1].dtype.kind in "fiub"):
            raise NetworkLoadError(f"TF network {where or 'state'}: a variable is not a (name, numeric array) pair")
    return list(variables)


def collect_tf_params(net: TFNetworkState) -> dict[str, np.ndarray]:
    """All variables of a TF network and its components, named ``component/.../variable``.

    Iterative, each component visited once: shared or looping components are refused (linear in the file).
    """
    out: dict[str, np.ndarray] = {}
    seen: set[int] = set()
    todo: list[tuple[str, Any]] = [("", net)]
    while todo:
        prefix, node = todo.pop()
        if not isinstance(node, TFNetworkState) or not hasattr(node, "state"):
            raise NetworkLoadError(f"TF component {prefix.rstrip('/')} is not a network state")
        if id(node) in seen:
            raise NetworkLoadError(f"TF component {prefix.rstrip('/') or 'the top'} is reached twice (shared or "
                                   "looping components)")
        seen.add(id(node))
        for name, value in _variables(node, prefix):
            out[prefix + name] = value
        components = node.state.get("components") or {}
        if not isinstance(components, dict) or not all(isinstance(k, str) for k in components):
            raise NetworkLoadError(f"TF network {prefix or 'state'}: components is not a dict of names")
        todo.extend((f"{prefix}{name}/", child) for name, child in components.items())
    return out


def _rename_lod_layers(params: dict[str, np.ndarray], layer: str, resolution: int) -> bool:
    """Map progressive-growing names ``<layer>_lod<k>/...`` to ``<r>x<r>/<layer>/...``; True if any were found."""
    found = False
    for name, value in list(params.items()):
        m = re.fullmatch(rf"(.*?){layer}_lod(\d+)/(.*)", name)
        if m:
            r = resolution // 2 ** int(m.group(2))
            params[f"{m.group(1)}{r}x{r}/{layer}/{m.group(3)}"] = value
            found = True
    return found


class _Params:
    """TF variables with conversion helpers; a missing variable is a one-line error naming it."""

    def __init__(self, params: dict[str, np.ndarray], what: str):
        self.params, self.what = params, what

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.params[name]
        except KeyError:
            raise NetworkLoadError(f"TF {self.what} has no variable {name!r}") from None

    def conv(self, name: str, flip: bool = False) -> np.ndarray:
        w = self[name]
        if flip:  # TF ran these as transposed convolutions: same kernel, mirrored in space
            w = w[::-1, ::-1]
        return w.transpose(3, 2, 0, 1)

    def dense(self, layer: str, field: str) -> np.ndarray:
        return self[f"{layer}/weight"].T if field == "weight" else self[f"{layer}/bias"]


def _generator_value(p: _Params, name: str) -> np.ndarray:
    if name == "mapping.w_avg":
        return p["dlatent_avg"]
    if name == "synthesis.b4.const":
        return p["synthesis/4x4/Const/const"][0]
    m = re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", name)
    if m:
        return p.dense("mapping/LabelEmbed" if m[1] == "embed" else f"mapping/Dense{m[2]}", m[3])
    m = re.fullmatch(r"synthesis\.b(\d+)\.(conv0|conv1|torgb|skip)\.(.+)", name)
    if not m:
        raise NetworkLoadError(f"no TF conversion rule for generator tensor {name!r}")
    r, layer, field = int(m[1]), m[2], m[3]
    tf_layer = {"conv0": "Conv0_up", "conv1": "Conv" if r == 4 else "Conv1", "torgb": "ToRGB", "skip": "Skip"}[layer]
    base = f"synthesis/{r}x{r}/{tf_layer}"
    if field == "weight":
        return p.conv(f"{base}/weight", flip=layer in ("conv0", "skip"))
    if field == "noise_const":
        index = 0 if r == 4 else 2 * int(math.log2(r)) - (5 if layer == "conv0" else 4)
        return p[f"synthesis/noise{index}"][0, 0]
    if field == "affine.weight":
        return p[f"{base}/mod_weight"].T
    if field == "affine.bias":
        return p[f"{base}/mod_bias"] + 1
    if field in ("bias", "noise_strength"):
        return p[f"{base}/{field}"]
    raise NetworkLoadError(f"no TF conversion rule for generator tensor {name!r}")


def _discriminator_value(p: _Params, name: str) -> np.ndarray:
    m = re.fullmatch(r"b(\d+)\.(fromrgb|conv0|conv1|skip)\.(weight|bias)", name)
    if m:
        tf_layer = {"fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down", "skip": "Skip"}[m[2]]
        base = f"{m[1]}x{m[1]}/{tf_layer}"
        return p.conv(f"{base}/weight") if m[3] == "weight" else p[f"{base}/bias"]
    m = re.fullmatch(r"b4\.(conv|fc|out)\.(weight|bias)", name)
    if m and m[1] == "conv":
        return p.conv("4x4/Conv/weight") if m[2] == "weight" else p["4x4/Conv/bias"]
    if m:
        return p.dense("4x4/Dense0" if m[1] == "fc" else "Output", m[2])
    m = re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", name)
    if m:
        return p.dense("LabelEmbed" if m[1] == "embed" else f"Mapping{m[2]}", m[3])
    raise NetworkLoadError(f"no TF conversion rule for discriminator tensor {name!r}")


def convert_state(params: dict[str, np.ndarray], names: list[str], what: str) -> dict[str, np.ndarray]:
    """Our state dict (every name except the fixed ``resample_filter`` buffers) from TF variables."""
    value_of: Callable[[_Params, str], np.ndarray] = _generator_value if what == "generator" else _discriminator_value
    p = _Params(params, what)
    out = {}
    for n in names:
        if n.endswith("resample_filter"):
            continue
        try:
            out[n] = np.array(value_of(p, n), dtype=np.float32, order="C")
        except (ValueError, IndexError, TypeError) as exc:
            raise NetworkLoadError(f"TF {what}: the variable for {n} has the wrong shape ({exc})") from None
    return out


def _from_tf(net: Any, what: str, kind: str, budget: int) -> torch.nn.Module:
    from stylegan_ada.networks import Discriminator, Generator

    _check_version(net, what)
    if kind == "generator":
        factory, kwargs, lod = Generator, _kwargs_from_tf(generator_kwargs, net, what), "ToRGB"
    else:
        factory, kwargs, lod = Discriminator, _kwargs_from_tf(discriminator_kwargs, net, what), "FromRGB"
    params = collect_tf_params(net)
    if isinstance(kwargs["img_resolution"], int) and _rename_lod_layers(params, lod, kwargs["img_resolution"]):
        (kwargs["synthesis_kwargs"] if kind == "generator" else kwargs)["architecture"] = "orig"
    module, state = build_bounded(factory, kwargs, what=f"TF {what}", budget=budget, error=NetworkLoadError,
                                  state=lambda names: convert_state(params, names, kind), keep=("resample_filter",))
    copy_state_into(module, state, what=f"TF {what}", keep=("resample_filter",))
    return module


def generator_from_tf(net: Any, what: str = "generator", budget: int = 1 << 30) -> torch.nn.Module:
    """Build our Generator from a TF generator state and copy the converted variables in.

    ``budget``: the file's size in bytes; a network needing more memory is refused before it is allocated.
    """
    return _from_tf(net, what, "generator", budget)


def discriminator_from_tf(net: Any, what: str = "discriminator", budget: int = 1 << 30) -> torch.nn.Module:
    """Build our Discriminator from a TF discriminator state and copy the converted variables in."""
    return _from_tf(net, what, "discriminator", budget)


def is_tf_pickle(data: Any) -> bool:
    return isinstance(data, TFNetworkState) or (
        isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetworkState) for n in data))


def convert_tf_pickle(data: Any, budget: int) -> dict[str, Any]:
    """(G, D, Gs) -> dict(G, D, G_ema, augment_pipe=None, training_set_kwargs=None); a lone Gs -> G_ema only."""
    if isinstance(data, TFNetworkState):
        return dict(G=None, D=None, G_ema=generator_from_tf(data, "Gs", budget), augment_pipe=None,
                    training_set_kwargs=None)
    tf_G, tf_D, tf_Gs = data
    return dict(G=generator_from_tf(tf_G, "G", budget), D=discriminator_from_tf(tf_D, "D", budget),
                G_ema=generator_from_tf(tf_Gs, "Gs", budget), augment_pipe=None, training_set_kwargs=None)
