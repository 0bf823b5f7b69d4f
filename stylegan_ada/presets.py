"""Training configurations: network kwargs + hyper-parameters, following the reference's `--cfg` presets.

`auto` reproduces the reference heuristics from resolution and GPU count (at 256 px on 1 GPU: batch 16, mbstd
group 4, channel_base 16384, lr 0.0025, gamma 0.8192, EMA 5 kimg, 2 mapping layers); `paper256` etc. are the fixed
reference configs; `tiny` and `small` are ours, for CPU-scale training at <= 64 px: `tiny` (<= 32 channels, z/w 64)
for tests and the demo, `small` (twice as wide: <= 64 channels, z/w 128) for CPU experiments.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

from stylegan_ada.training.options import OptionError, TrainingOptions, check_option, check_range, field_names

TRANSFER_ADA_KIMG = 100.0  # ADA reacts faster when starting from a trained network (the reference's resume rule)

PRESETS = ("auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar", "tiny", "small")
TINY_MAX_RESOLUTION = 64  # for both CPU presets

# Reference facts (train.py cfg_specs); -1 = computed by the `auto` heuristics.
_SPECS: dict[str, dict[str, Any]] = {
    "auto": dict(ref_gpus=-1, kimg=25000, mb=-1, mbstd=-1, fmaps=-1, lrate=-1, gamma=-1, ema=-1, ramp=0.05, map=2),
    "stylegan2": dict(ref_gpus=8, kimg=25000, mb=32, mbstd=4, fmaps=1, lrate=0.002, gamma=10, ema=10, ramp=None,
                      map=8),
    "paper256": dict(ref_gpus=8, kimg=25000, mb=64, mbstd=8, fmaps=0.5, lrate=0.0025, gamma=1, ema=20, ramp=None,
                     map=8),
    "paper512": dict(ref_gpus=8, kimg=25000, mb=64, mbstd=8, fmaps=1, lrate=0.0025, gamma=0.5, ema=20, ramp=None,
                     map=8),
    "paper1024": dict(ref_gpus=8, kimg=25000, mb=32, mbstd=4, fmaps=1, lrate=0.002, gamma=2, ema=10, ramp=None,
                      map=8),
    "cifar": dict(ref_gpus=2, kimg=100000, mb=64, mbstd=32, fmaps=1, lrate=0.0025, gamma=0.01, ema=500, ramp=0.05,
                  map=2),
    "tiny": dict(ref_gpus=-1, kimg=200, mb=8, mbstd=4, fmaps=1 / 32, lrate=0.0025, gamma=-1, ema=-1, ramp=0.05,
                 map=2),
    "small": dict(ref_gpus=-1, kimg=200, mb=8, mbstd=4, fmaps=1 / 16, lrate=0.0025, gamma=-1, ema=-1, ramp=0.05,
                  map=2),
}
# The CPU presets' narrow networks (fp32 throughout: no fp16 on CPU).
_CPU_NETWORKS = {"tiny": dict(z_dim=64, w_dim=64, channel_max=32), "small": dict(z_dim=128, w_dim=128, channel_max=64)}

# Overrides that replace a top-level key, and those that go into the network kwargs.
_TOP_LEVEL = ("batch", "gamma", "kimg", "lr", "ema_kimg", "ema_rampup", "mbstd_group", "map_layers", "fmaps",
              "channel_max", "pl_weight", "style_mixing_prob", "z_dim", "w_dim")
_NETWORK = ("c_dim", "img_channels", "num_fp16_res", "conv_clamp", "freeze_layers", "cmap_dim")


class PresetError(ValueError):
    """An unknown preset, an unusable resolution/GPU count or an invalid override (message says how to fix)."""


def _checked(name: str, value: Any, check: Callable[[], None] | None = None) -> None:
    """The option path's range check (stylegan_ada.training.options), as a PresetError."""
    try:
        check() if check else check_option(name, value)
    except OptionError as exc:
        raise PresetError(str(exc)) from None


def _auto_spec(spec: dict[str, Any], resolution: int, gpus: int) -> None:
    """The reference's `auto` heuristics, in place."""
    spec["ref_gpus"] = gpus
    spec["mb"] = max(min(gpus * min(4096 // resolution, 32), 64), gpus)  # keeps GPU memory at bay
    spec["mbstd"] = min(spec["mb"] // gpus, 4)  # fixed group size keeps other hyper-parameters predictable
    spec["fmaps"] = 1 if resolution >= 512 else 0.5
    spec["lrate"] = 0.002 if resolution >= 1024 else 0.0025
    spec["gamma"] = 0.0002 * (resolution ** 2) / spec["mb"]
    spec["ema"] = spec["mb"] * 10 / 32


def _validate(cfg: str, resolution: int, gpus: int) -> None:
    if cfg not in PRESETS:
        raise PresetError(f"unknown preset {cfg!r}; choose one of {', '.join(PRESETS)}")
    if not isinstance(resolution, int) or resolution < 4 or resolution & (resolution - 1):
        raise PresetError(f"resolution must be a power of two >= 4, got {resolution!r}; resize the images")
    if not isinstance(gpus, int) or gpus < 1:
        raise PresetError(f"gpus must be a positive integer, got {gpus!r}")
    if cfg in _CPU_NETWORKS and resolution > TINY_MAX_RESOLUTION:
        raise PresetError(f"preset {cfg!r} is for <= {TINY_MAX_RESOLUTION} px images, got {resolution}; "
                          "use 'auto' for larger images")


def _base(cfg: str, resolution: int, gpus: int) -> dict[str, Any]:
    """Top-level hyper-parameters of a preset before overrides."""
    spec = dict(_SPECS[cfg])
    if cfg == "auto":
        _auto_spec(spec, resolution, gpus)
    if cfg in _CPU_NETWORKS:
        spec["ref_gpus"] = gpus
        spec["mb"] = max(spec["mb"], gpus)
        spec["gamma"] = 0.0002 * (resolution ** 2) / spec["mb"]
        spec["ema"] = spec["mb"] * 10 / 32
    narrow = _CPU_NETWORKS.get(cfg, dict(z_dim=512, w_dim=512, channel_max=512))
    return dict(
        cfg=cfg, resolution=resolution, gpus=gpus, ref_gpus=spec["ref_gpus"], kimg=spec["kimg"],
        batch=spec["mb"], batch_gpu=spec["mb"] // spec["ref_gpus"], lr=spec["lrate"], gamma=spec["gamma"],
        ema_kimg=spec["ema"], ema_rampup=spec["ramp"], mbstd_group=spec["mbstd"], map_layers=spec["map"],
        fmaps=spec["fmaps"], channel_max=narrow["channel_max"], z_dim=narrow["z_dim"], w_dim=narrow["w_dim"],
        pl_weight=0 if cfg == "cifar" else 2, style_mixing_prob=0 if cfg == "cifar" else 0.9,
        G_reg_interval=4, D_reg_interval=16, pl_batch_shrink=2, pl_decay=0.01,
    )


def _apply_overrides(p: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Top-level overrides in place; returns the network-level ones. `None` values mean "not given"."""
    unknown = sorted(set(overrides) - set(_TOP_LEVEL) - set(_NETWORK))
    if unknown:
        raise PresetError(f"unknown preset override(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(_TOP_LEVEL + _NETWORK)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if "batch" in given:
        batch = given["batch"]
        if not isinstance(batch, int) or batch < 1 or batch % p["gpus"]:
            raise PresetError(f"batch must be a positive multiple of the GPU count ({p['gpus']}), got {batch!r}")
        p["batch_gpu"] = batch // p["gpus"]
    for key in ("gamma", "ema_kimg", "ema_rampup", "pl_weight", "style_mixing_prob"):
        if key in given:
            _checked(key, given[key])
    if "lr" in given:
        _checked("lr", given["lr"], lambda: check_range("lr", given["lr"], 0))
    for key in ("kimg", "mbstd_group", "map_layers", "channel_max", "z_dim", "w_dim"):
        if key in given and not (isinstance(given[key], int) and given[key] >= 1):
            raise PresetError(f"{key} must be a positive integer, got {given[key]!r}")
    p.update({k: v for k, v in given.items() if k in _TOP_LEVEL})
    return {k: v for k, v in given.items() if k in _NETWORK}


def _network_kwargs(p: dict[str, Any], net: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(G_kwargs, D_kwargs) ready for `Generator(**G_kwargs)` / `Discriminator(**D_kwargs)`."""
    channel_base = int(p["fmaps"] * 32768)
    common = dict(channel_base=channel_base, channel_max=p["channel_max"],
                  num_fp16_res=net.get("num_fp16_res", 0 if p["cfg"] in _CPU_NETWORKS else 4),
                  conv_clamp=net.get("conv_clamp", 256))  # clamping keeps fp16 activations from overflowing
    c_dim, img_channels = net.get("c_dim", 0), net.get("img_channels", 3)
    g_kwargs = dict(z_dim=p["z_dim"], c_dim=c_dim, w_dim=p["w_dim"], img_resolution=p["resolution"],
                    img_channels=img_channels, mapping_kwargs=dict(num_layers=p["map_layers"]),
                    synthesis_kwargs=dict(common))
    d_kwargs = dict(c_dim=c_dim, img_resolution=p["resolution"], img_channels=img_channels, **common,
                    block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=p["mbstd_group"]))
    if p["cfg"] == "cifar":
        d_kwargs["architecture"] = "orig"
    if net.get("freeze_layers"):
        d_kwargs["block_kwargs"]["freeze_layers"] = net["freeze_layers"]
    if "cmap_dim" in net:
        d_kwargs["cmap_dim"] = net["cmap_dim"]
    return g_kwargs, d_kwargs


def resolve(cfg: str, resolution: int, gpus: int = 1, **overrides: Any) -> dict[str, Any]:
    """Network kwargs and training hyper-parameters of preset `cfg` at `resolution` px on `gpus` GPUs.

    Keys: cfg, resolution, gpus, G_kwargs, D_kwargs, G_opt_kwargs, D_opt_kwargs, batch, batch_gpu, lr, gamma,
    ema_kimg, ema_rampup, mbstd_group, map_layers, fmaps, kimg, pl_weight, style_mixing_prob, G_reg_interval,
    D_reg_interval, ... Overrides (None = not given): batch, gamma, kimg, lr, ema_kimg, ema_rampup, mbstd_group,
    map_layers, fmaps, channel_max, pl_weight, style_mixing_prob, z_dim, w_dim, and for the networks c_dim,
    img_channels, num_fp16_res, conv_clamp, freeze_layers, cmap_dim. As in the reference, overriding `batch` leaves
    the batch-derived heuristics (gamma, EMA, mbstd group) as they were.
    """
    _validate(cfg, resolution, gpus)
    p = _base(cfg, resolution, gpus)
    net = _apply_overrides(p, overrides)
    group = min(p["mbstd_group"], p["batch_gpu"])
    if p["batch_gpu"] % group:
        raise PresetError(f"the per-GPU batch {p['batch_gpu']} must be divisible by the minibatch-std group "
                          f"size {p['mbstd_group']}; change batch or mbstd_group")
    p["G_kwargs"], p["D_kwargs"] = _network_kwargs(p, net)
    opt = dict(lr=p["lr"], betas=[0, 0.99], eps=1e-8)
    p["G_opt_kwargs"], p["D_opt_kwargs"] = dict(opt), copy.deepcopy(opt)
    return p


def training_options(cfg: str, resolution: int, gpus: int = 1, *, c_dim: int = 0, freeze_layers: int | None = None,
                     transfer: bool = False, **fields: Any) -> TrainingOptions:
    """The TrainingOptions of preset ``cfg``: the network and hyper-parameters of :func:`resolve`, then ``fields``.

    ``fields`` are TrainingOptions fields; None means "not given": batch, batch_gpu, gamma and total_kimg then come
    from the preset, everything else from the TrainingOptions defaults. ``transfer`` (starting from a trained
    network) turns off the EMA ramp-up and sets the ADA speed to 100 kimg, as the reference does. Values out of range
    raise OptionError naming the field (checked before they shape anything); unusable presets raise PresetError.
    """
    given = {k: v for k, v in fields.items() if v is not None}
    unknown = sorted(set(given) - set(field_names()))
    if unknown:
        raise PresetError(f"unknown training option(s) {', '.join(unknown)}")
    for key, value in given.items():
        check_option(key, value)
    if freeze_layers is not None:
        check_range("freeze_layers", freeze_layers, 0, integer=True)
    p = resolve(cfg, resolution, gpus, batch=given.pop("batch", None), gamma=given.pop("gamma", None), c_dim=c_dim,
                freeze_layers=freeze_layers or None)
    batch_gpu = given.pop("batch_gpu", None) or p["batch_gpu"]
    per_gpu = p["batch"] // gpus
    if per_gpu % batch_gpu:
        raise OptionError("batch_gpu", f"{batch_gpu} must divide the per-GPU batch {per_gpu} (batch {p['batch']} / "
                                       f"{gpus} GPU(s))")
    group = p["mbstd_group"]
    if batch_gpu % min(group, batch_gpu):
        raise OptionError("batch_gpu", f"{batch_gpu} must be a multiple of the minibatch-std group {group}")
    values: dict[str, Any] = dict(
        G_kwargs=p["G_kwargs"], D_kwargs=p["D_kwargs"], G_opt_kwargs=p["G_opt_kwargs"], D_opt_kwargs=p["D_opt_kwargs"],
        batch=p["batch"], batch_gpu=batch_gpu, total_kimg=float(p["kimg"]), gamma=float(p["gamma"]),
        ema_kimg=float(p["ema_kimg"]), ema_rampup=None if transfer else p["ema_rampup"],
        G_reg_interval=p["G_reg_interval"], D_reg_interval=p["D_reg_interval"], pl_weight=float(p["pl_weight"]),
        pl_batch_shrink=p["pl_batch_shrink"], pl_decay=p["pl_decay"],
        style_mixing_prob=float(p["style_mixing_prob"]))
    if transfer:
        values["ada_kimg"] = TRANSFER_ADA_KIMG
    values.update(given)
    return TrainingOptions(**values)
