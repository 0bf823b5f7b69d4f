"""Presets: the reference's `auto` heuristics and paper256 config, exact 256 px layouts, and a CPU-fast `tiny`."""
from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from tests.support.paths import FIXTURES
from stylegan_ada import presets
from stylegan_ada.networks import Discriminator, Generator


def _build_meta(p: dict) -> tuple[Generator, Discriminator]:
    with torch.device("meta"):
        return Generator(**p["G_kwargs"]), Discriminator(**p["D_kwargs"])


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_auto_256_one_gpu_is_the_thesis_config():
    p = presets.resolve("auto", 256, gpus=1)
    expected = dict(batch=16, batch_gpu=16, mbstd_group=4, lr=0.0025, ema_kimg=5.0, ema_rampup=0.05, map_layers=2,
                    fmaps=0.5)
    assert {k: p[k] for k in expected} == expected
    assert p["gamma"] == pytest.approx(0.8192)
    syn = p["G_kwargs"]["synthesis_kwargs"]
    assert syn == dict(channel_base=16384, channel_max=512, num_fp16_res=4, conv_clamp=256)
    assert p["G_kwargs"]["mapping_kwargs"] == dict(num_layers=2)
    assert p["D_kwargs"]["channel_base"] == 16384 and p["D_kwargs"]["epilogue_kwargs"] == dict(mbstd_group_size=4)
    assert p["G_opt_kwargs"] == p["D_opt_kwargs"] == dict(lr=0.0025, betas=[0, 0.99], eps=1e-8)
    G, D = _build_meta(p)
    assert (_count(G), _count(D)) == (23_191_522, 24_001_089)


@pytest.mark.parametrize("res, gpus, batch, mbstd, base, lr, gamma, ema", [
    (32, 1, 32, 4, 16384, 0.0025, 0.0064, 10.0),
    (512, 4, 32, 4, 32768, 0.0025, 1.6384, 10.0),
    (1024, 8, 32, 4, 32768, 0.002, 6.5536, 10.0),
    (128, 2, 64, 4, 16384, 0.0025, 0.0512, 20.0),
])
def test_auto_heuristics(res, gpus, batch, mbstd, base, lr, gamma, ema):
    p = presets.resolve("auto", res, gpus=gpus)
    assert (p["batch"], p["batch_gpu"], p["mbstd_group"], p["lr"]) == (batch, batch // gpus, mbstd, lr)
    assert p["G_kwargs"]["synthesis_kwargs"]["channel_base"] == base
    assert p["gamma"] == pytest.approx(gamma) and p["ema_kimg"] == pytest.approx(ema)


def test_paper256_has_exactly_the_reference_layout():
    p = presets.resolve("paper256", 256)
    assert (p["batch"], p["batch_gpu"], p["mbstd_group"], p["gamma"], p["ema_kimg"], p["map_layers"]) == (
        64, 8, 8, 1, 20, 8)
    G, D = _build_meta(p)
    got = [f"{net} {name} {tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}"
           for net, module in (("G", G), ("D", D)) for name, t in module.state_dict().items()]
    assert got == (FIXTURES / "keys_res256_paper256.txt").read_text().splitlines()
    assert _count(D) == 24_001_089  # D does not depend on the mapping depth


def test_overrides_and_network_options():
    p = presets.resolve("auto", 256, gpus=2, batch=32, gamma=2.0, c_dim=4, freeze_layers=5, kimg=None)
    assert (p["batch"], p["batch_gpu"], p["gamma"], p["kimg"]) == (32, 16, 2.0, 25000)
    assert p["G_kwargs"]["c_dim"] == p["D_kwargs"]["c_dim"] == 4
    assert p["D_kwargs"]["block_kwargs"] == dict(freeze_layers=5)
    G, D = _build_meta(p)
    assert G.c_dim == 4 and hasattr(D, "mapping")


@pytest.mark.parametrize("args, kwargs, match", [
    (("nope", 256), {}, "unknown preset"),
    (("auto", 200), {}, "power of two"),
    (("auto", 256), dict(gpus=0), "gpus"),
    (("tiny", 128), {}, "tiny"),
    (("small", 128), {}, "small"),
    (("auto", 256), dict(batch=5, gpus=2), "multiple of the GPU count"),
    (("auto", 256), dict(batch=6), "minibatch-std group"),
    (("auto", 256), dict(gamma=-1.0), "gamma must be >= 0"),
    (("auto", 256), dict(colour="red"), "unknown preset override"),
])
def test_bad_requests_raise_preset_error(args, kwargs, match):
    with pytest.raises(presets.PresetError, match=match):
        presets.resolve(*args, **kwargs)


def test_tiny_is_fp32_and_trains_on_cpu():
    # its CPU speed is measured in docs/benchmarks.md (tools/bench_networks.py --cfg tiny), not asserted here
    p = presets.resolve("tiny", 32)
    assert p["G_kwargs"]["synthesis_kwargs"]["num_fp16_res"] == 0 and p["D_kwargs"]["num_fp16_res"] == 0
    assert p["batch"] >= 4
    torch.manual_seed(0)
    G, D = Generator(**p["G_kwargs"]).train(), Discriminator(**p["D_kwargs"]).train()
    F.softplus(D(G(torch.randn(4, G.z_dim), None), None)).sum().backward()
    grads = [q.grad for q in (*G.parameters(), *D.parameters()) if q.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_small_is_twice_as_wide_as_tiny():
    t, s = presets.resolve("tiny", 64), presets.resolve("small", 64)
    G_t, G_s = Generator(**t["G_kwargs"]), Generator(**s["G_kwargs"])
    chans = lambda G: {r: getattr(G.synthesis, f"b{r}").torgb.weight.shape[1] for r in G.synthesis.block_resolutions}
    assert chans(G_t) == {4: 32, 8: 32, 16: 32, 32: 32, 64: 16}
    assert chans(G_s) == {4: 64, 8: 64, 16: 64, 32: 64, 64: 32}
    assert (G_s.z_dim, G_s.w_dim, t["batch"], s["batch"]) == (128, 128, 8, 8)
    assert s["G_kwargs"]["synthesis_kwargs"]["num_fp16_res"] == 0 and s["D_kwargs"]["num_fp16_res"] == 0
