"""Conditional networks through the TF converter (the TF fixture is unconditional).

The fixture's conditional Gc/Dc are written out as TF variables the way the TF code stored them, then converted back;
the result must reproduce the reference's conditional outputs. This checks the label-embedding and D-mapping names
and the conditional kwargs (label_size, mapping_fmaps -> cmap_dim); transposes and flips are pinned by the exact
fixture comparison in test_legacy_load.py.
"""
from __future__ import annotations

import json
import math
import re

import numpy as np
import torch

from helpers import FIXTURES
from stylegan_ada.legacy import tf_convert
from stylegan_ada.legacy.unpickler import TFNetworkState


def _tf_net(name: str, static_kwargs: dict, variables: dict[str, np.ndarray], components: dict | None = None):
    net = TFNetworkState()
    net.__setstate__(dict(version=4, name=name, static_kwargs=static_kwargs, components=components or {},
                          build_module_src="# omitted", build_func_name="x", variables=list(variables.items())))
    return net


def _tf_conv(w: np.ndarray, flip: bool = False) -> np.ndarray:
    w = w.transpose(2, 3, 1, 0)  # [out, in, kh, kw] -> [kh, kw, in, out]
    return w[::-1, ::-1] if flip else w


def _generator_tf_vars(state: dict[str, np.ndarray]) -> tuple[dict, dict]:
    mapping, synthesis = {}, {}
    for name, v in state.items():
        if name.startswith("mapping."):
            m = re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", name)
            if m:
                layer = "LabelEmbed" if m[1] == "embed" else f"Dense{m[2]}"
                mapping[f"{layer}/{m[3]}"] = v.T if m[3] == "weight" else v
            continue
        if name == "synthesis.b4.const":
            synthesis["4x4/Const/const"] = v[None]
            continue
        m = re.fullmatch(r"synthesis\.b(\d+)\.(conv0|conv1|torgb)\.(.+)", name)
        if not m or m[3] == "resample_filter":
            continue
        r = int(m[1])
        layer = {"conv0": "Conv0_up", "conv1": "Conv" if r == 4 else "Conv1", "torgb": "ToRGB"}[m[2]]
        base, field = f"{r}x{r}/{layer}", m[3]
        if field == "weight":
            synthesis[f"{base}/weight"] = _tf_conv(v, flip=m[2] == "conv0")
        elif field == "noise_const":
            idx = 0 if r == 4 else 2 * int(math.log2(r)) - (5 if m[2] == "conv0" else 4)
            synthesis[f"noise{idx}"] = v[None, None]
        elif field == "affine.weight":
            synthesis[f"{base}/mod_weight"] = v.T
        elif field == "affine.bias":
            synthesis[f"{base}/mod_bias"] = v - 1
        else:
            synthesis[f"{base}/{field}"] = v
    return mapping, synthesis


def _discriminator_tf_vars(state: dict[str, np.ndarray]) -> dict:
    out = {}
    for name, v in state.items():
        m = re.fullmatch(r"b(\d+)\.(fromrgb|conv0|conv1|skip)\.(weight|bias)", name)
        if m:
            layer = {"fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down", "skip": "Skip"}[m[2]]
            out[f"{m[1]}x{m[1]}/{layer}/{m[3]}"] = _tf_conv(v) if m[3] == "weight" else v
            continue
        m = re.fullmatch(r"b4\.(conv|fc|out)\.(weight|bias)", name)
        if m:
            layer = {"conv": "4x4/Conv", "fc": "4x4/Dense0", "out": "Output"}[m[1]]
            conv = m[1] == "conv"
            out[f"{layer}/{m[2]}"] = (_tf_conv(v) if conv else v.T) if m[2] == "weight" else v
            continue
        m = re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", name)
        if m:
            layer = "LabelEmbed" if m[1] == "embed" else f"Mapping{m[2]}"
            out[f"{layer}/{m[3]}"] = v.T if m[3] == "weight" else v
    return out


def test_conditional_tf_networks_reproduce_reference_outputs():
    kwargs = json.loads((FIXTURES / "tiny_kwargs.json").read_text())
    with np.load(FIXTURES / "tiny_nets.npz") as f:
        nets = dict(f)
    with np.load(FIXTURES / "tiny_io.npz") as f:
        io_ref = dict(f)
    g_state = {k[3:]: v for k, v in nets.items() if k.startswith("Gc.")}
    d_state = {k[3:]: v for k, v in nets.items() if k.startswith("Dc.")}
    gk, dk = kwargs["Gc"], kwargs["Dc"]
    common = dict(resolution=gk["img_resolution"], num_channels=3, label_size=gk["c_dim"],
                  fmap_base=gk["synthesis_kwargs"]["channel_base"] // 2, fmap_max=32, num_fp16_res=0, conv_clamp=256)
    mapping, synthesis = _generator_tf_vars(g_state)
    tf_G = _tf_net("G", dict(common, latent_size=gk["z_dim"], dlatent_size=gk["w_dim"], mapping_layers=2),
                   {"dlatent_avg": g_state["mapping.w_avg"]},
                   {"mapping": _tf_net("G_mapping", {}, mapping), "synthesis": _tf_net("G_synthesis", {}, synthesis)})
    cmap_dim = d_state["b4.out.weight"].shape[0]
    tf_D = _tf_net("D", dict(common, mbstd_group_size=4, mapping_layers=8, mapping_fmaps=cmap_dim,
                             mapping_lrmul=0.01), _discriminator_tf_vars(d_state))

    G = tf_convert.generator_from_tf(tf_G).eval()
    D = tf_convert.discriminator_from_tf(tf_D).eval()
    assert D.init_kwargs["cmap_dim"] == cmap_dim and G.c_dim == 3
    z, c = torch.from_numpy(io_ref["z"]), torch.from_numpy(io_ref["c"])
    with torch.no_grad():
        ws = G.mapping(z, c)
        img = G.synthesis(ws, noise_mode="const")
        logits = D(torch.from_numpy(io_ref["imgc"]), c)
    for name, value in (("wsc", ws), ("imgc", img), ("logitsc", logits)):
        diff = float((value - torch.from_numpy(io_ref[name])).abs().max())
        assert diff <= 1e-4, (name, diff)
