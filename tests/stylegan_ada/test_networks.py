"""Networks: numerically interchangeable with the reference (fixtures), reference names, behaviour of the parts."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.support.paths import FIXTURES
from stylegan_ada.networks import (Conv2dLayer, Discriminator, Generator, MappingNetwork, SynthesisLayer,
                                   modulated_conv2d)
from stylegan_ada.networks.runtime import block_dtype, default_fused_modconv
from stylegan_ada.ops import upfirdn2d

NET_TOL = 1e-4
KWARGS = json.loads((FIXTURES / "tiny_kwargs.json").read_text())
CLASSES = {"G": Generator, "Gc": Generator, "D": Discriminator, "Dc": Discriminator}


@pytest.fixture(scope="module")
def fixture_arrays() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    with np.load(FIXTURES / "tiny_nets.npz") as nets, np.load(FIXTURES / "tiny_io.npz") as io:
        return dict(nets), dict(io)


def _state(nets: dict[str, np.ndarray], name: str) -> dict[str, torch.Tensor]:
    return {k[len(name) + 1:]: torch.from_numpy(v) for k, v in nets.items() if k.split(".", 1)[0] == name}


@pytest.fixture(scope="module")
def tiny(fixture_arrays) -> dict[str, torch.nn.Module]:
    nets, _ = fixture_arrays
    out = {}
    for name, cls in CLASSES.items():
        module = cls(**KWARGS[name])
        module.load_state_dict(_state(nets, name), strict=True)
        out[name] = module.eval().requires_grad_(False)
    return out


def _diff(a: torch.Tensor, b: np.ndarray) -> float:
    assert tuple(a.shape) == b.shape
    return float(np.abs(a.numpy() - b).max())


def test_tiny_networks_reproduce_reference_outputs(tiny, fixture_arrays):
    _, io = fixture_arrays
    G, D, Gc, Dc = tiny["G"], tiny["D"], tiny["Gc"], tiny["Dc"]
    z, c = torch.from_numpy(io["z"]), torch.from_numpy(io["c"])
    assert _diff(G.mapping(z, None), io["ws"]) <= NET_TOL
    assert _diff(G.mapping(z, None, truncation_psi=0.5), io["ws_trunc05"]) <= NET_TOL
    assert _diff(G.synthesis(torch.from_numpy(io["ws"]), noise_mode="const"), io["img"]) <= NET_TOL
    assert _diff(G.synthesis(torch.from_numpy(io["ws_trunc05"]), noise_mode="const"), io["img_trunc05"]) <= NET_TOL
    assert _diff(G(z, None, noise_mode="const"), io["img"]) <= NET_TOL
    assert _diff(D(torch.from_numpy(io["img"]), None), io["logits"]) <= NET_TOL
    assert _diff(Gc.mapping(z, c), io["wsc"]) <= NET_TOL
    assert _diff(Gc.synthesis(torch.from_numpy(io["wsc"]), noise_mode="const"), io["imgc"]) <= NET_TOL
    assert _diff(Dc(torch.from_numpy(io["imgc"]), c), io["logitsc"]) <= NET_TOL


@pytest.mark.parametrize("fused", [True, False])
def test_fused_and_unfused_modconv_both_match(tiny, fixture_arrays, fused):
    """Training (and CPU inference of batches) use the unfused modulated convolution, GPU inference the fused one."""
    _, io = fixture_arrays
    img = tiny["G"].synthesis(torch.from_numpy(io["ws"]), noise_mode="const", fused_modconv=fused)
    assert _diff(img, io["img"]) <= NET_TOL


def test_state_dict_names_follow_reference_order(tiny, fixture_arrays):
    nets, _ = fixture_arrays
    for name, module in tiny.items():
        assert list(module.state_dict()) == list(_state(nets, name))


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_init_kwargs_rebuild_identical_layout(tiny, name):
    module = tiny[name]
    kwargs = json.loads(json.dumps(module.init_kwargs))
    assert kwargs == KWARGS[name]
    rebuilt = CLASSES[name](**kwargs)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in module.state_dict().items()}
    assert all(hasattr(m, "init_kwargs") for m in module.modules() if m.__module__.startswith("stylegan_ada"))


def test_mapping_tracks_w_avg_only_in_training():
    torch.manual_seed(0)
    mapping = MappingNetwork(z_dim=8, c_dim=0, w_dim=8, num_ws=3, num_layers=2, w_avg_beta=0.9)
    z = torch.randn(16, 8)
    mapping.eval()(z, None)
    assert torch.count_nonzero(mapping.w_avg) == 0
    mapping.train()(z, None, skip_w_avg_update=True)
    assert torch.count_nonzero(mapping.w_avg) == 0
    ws = mapping(z, None)
    assert torch.allclose(mapping.w_avg, 0.1 * ws[:, 0].mean(dim=0), atol=1e-6)


def test_truncation_psi_and_cutoff():
    torch.manual_seed(0)
    mapping = MappingNetwork(z_dim=8, c_dim=0, w_dim=8, num_ws=4, num_layers=2).eval()
    mapping.w_avg.normal_()
    z = torch.randn(5, 8)
    ws = mapping(z, None)
    assert torch.allclose(mapping(z, None, truncation_psi=0), mapping.w_avg.expand_as(ws))
    cut = mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
    assert torch.allclose(cut[:, :2], mapping.w_avg + 0.5 * (ws[:, :2] - mapping.w_avg), atol=1e-6)
    assert torch.equal(cut[:, 2:], ws[:, 2:])


def test_noise_modes(tiny, fixture_arrays):
    _, io = fixture_arrays
    G = Generator(**KWARGS["G"]).eval()
    G.load_state_dict(tiny["G"].state_dict())
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.data.fill_(0.5)
    ws = torch.from_numpy(io["ws"])
    const = [G.synthesis(ws, noise_mode="const") for _ in range(2)]
    rand = [G.synthesis(ws, noise_mode="random") for _ in range(2)]
    none = G.synthesis(ws, noise_mode="none")
    assert torch.equal(const[0], const[1])
    assert not torch.allclose(rand[0], rand[1])
    assert not torch.allclose(none, const[0])
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="loud")


def test_input_shape_errors(tiny):
    with pytest.raises(ValueError, match=r"expected shape \[\*, 64\]"):
        tiny["G"](torch.zeros(2, 32), None)
    with pytest.raises(ValueError, match="conditional"):
        tiny["Gc"](torch.zeros(2, 64), None)
    with pytest.raises(ValueError, match="image"):
        tiny["D"](torch.zeros(2, 3, 16, 16), None)
    with pytest.raises(ValueError, match="divisible by the group size"):
        tiny["D"](torch.zeros(6, 3, 32, 32), None)


def test_freeze_layers_keeps_names_and_removes_parameters():
    kwargs = dict(KWARGS["D"], block_kwargs=dict(freeze_layers=3))
    frozen, free = Discriminator(**kwargs), Discriminator(**KWARGS["D"])
    assert sorted(frozen.state_dict()) == sorted(free.state_dict())
    trainable = {n for n, _ in frozen.named_parameters()}
    assert {"b32.fromrgb.weight", "b32.conv0.weight", "b32.conv1.weight"}.isdisjoint(trainable)
    assert "b32.skip.weight" in trainable and "b16.conv0.weight" in trainable


def test_fused_modconv_policy():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert default_fused_modconv(False, torch.float32, cuda, 8)
    assert not default_fused_modconv(False, torch.float16, cuda, 8)
    assert default_fused_modconv(False, torch.float16, cuda, 1)
    assert not default_fused_modconv(False, torch.float32, cpu, 8)
    assert default_fused_modconv(False, torch.float32, cpu, 1)
    assert not default_fused_modconv(True, torch.float32, cuda, 1)


def test_fp16_only_for_cuda_blocks():
    assert block_dtype(True, False, torch.device("cuda")) == torch.float16
    assert block_dtype(True, True, torch.device("cuda")) == torch.float32
    assert block_dtype(True, False, torch.device("cpu")) == torch.float32
    assert block_dtype(False, False, torch.device("cuda")) == torch.float32
    torch.manual_seed(0)
    g16 = Generator(**{**KWARGS["G"], "synthesis_kwargs": {**KWARGS["G"]["synthesis_kwargs"], "num_fp16_res": 2}})
    assert g16.synthesis.b32.use_fp16 and g16.synthesis.b16.use_fp16 and not g16.synthesis.b8.use_fp16
    assert g16(torch.randn(2, 64), None).dtype == torch.float32


@pytest.mark.parametrize("up, demodulate", [(1, True), (2, True), (1, False)])
def test_modulated_conv_fused_equals_unfused(up, demodulate):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 6, 6, generator=g, dtype=torch.float64)
    weight = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.randn(3, 4, generator=g, dtype=torch.float64)
    noise = torch.randn(3, 1, 6 * up, 6 * up, generator=g, dtype=torch.float64)
    f = upfirdn2d.setup_filter([1, 3, 3, 1]).double()
    kw = dict(noise=noise, up=up, padding=1, resample_filter=f, demodulate=demodulate, flip_weight=(up == 1))
    fused = modulated_conv2d(x, weight, styles, fused_modconv=True, **kw)
    unfused = modulated_conv2d(x, weight, styles, fused_modconv=False, **kw)
    assert torch.allclose(fused, unfused, atol=1e-10)
    if demodulate and up == 1:  # demodulation: unit-norm output weights for each sample
        w = weight[None] * styles[:, None, :, None, None]
        w = w / w.square().sum(dim=[2, 3, 4], keepdim=True).sqrt()
        direct = torch.cat([F.conv2d(x[i:i + 1], w[i], padding=1) for i in range(3)]) + noise
        assert torch.allclose(fused, direct, atol=1e-10)


@pytest.mark.parametrize("up", [1, 2])
def test_synthesis_layer_second_order_gradients(up):
    """Path-length regularization differentiates d(img)/d(w) again; R1 does the same through D's layers."""
    torch.manual_seed(0)
    layer = SynthesisLayer(2, 3, w_dim=3, resolution=4 * up, up=up, conv_clamp=0.9).double().requires_grad_(False)
    layer.noise_strength.fill_(0.3)
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    for fused in (True, False):
        fn = lambda x, w: layer(x, w, noise_mode="const", fused_modconv=fused)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x, w), fast_mode=True)
        assert torch.autograd.gradgradcheck(fn, (x, w), fast_mode=True)


def test_discriminator_conv_second_order_gradients():
    torch.manual_seed(0)
    layer = Conv2dLayer(2, 3, kernel_size=3, activation="lrelu", down=2, conv_clamp=0.8).double()
    layer.requires_grad_(False)
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(layer, (x,), fast_mode=True)


def test_training_step_gives_finite_gradients_everywhere(tiny):
    G = Generator(**KWARGS["Gc"]).train()
    D = Discriminator(**KWARGS["Dc"]).train()
    z, c = torch.randn(4, 64), torch.eye(3)[[0, 1, 2, 0]]
    img = G(z, c)
    img_real = img.detach().requires_grad_()
    logits = D(img, c)
    (r1,) = torch.autograd.grad(D(img_real, c).sum(), img_real, create_graph=True)
    (F.softplus(-logits).sum() + r1.square().sum()).backward()
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        if name.endswith("noise_strength"):
            continue  # zero at init, still receives gradient below
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert all(p.grad is not None for n, p in G.named_parameters() if n.endswith("noise_strength"))
