"""Ops reference paths: agreement with the reference fixtures, gradients (1st + 2nd order), dispatch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck

from stylegan_ada.ops import bias_act, conv2d_resample, upfirdn2d
from tests.support.paths import FIXTURES

OPS_TOL = 1e-5


@pytest.fixture(scope="module")
def ops_io() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "ops_io.npz") as data:
        return {k: data[k] for k in data.files}


def _diff(a: torch.Tensor, b: np.ndarray) -> float:
    assert tuple(a.shape) == b.shape
    return float(np.abs(a.detach().numpy() - b).max())


def test_setup_filter_matches_fixture(ops_io):
    assert _diff(upfirdn2d.setup_filter([1, 3, 3, 1]), ops_io["filter_1331"]) == 0


@pytest.mark.parametrize("name, call", [
    ("upfirdn2d_up2", lambda x, f: upfirdn2d.upsample2d(x, f)),
    ("upfirdn2d_down2", lambda x, f: upfirdn2d.downsample2d(x, f)),
    ("upfirdn2d_filter_pad1", lambda x, f: upfirdn2d.filter2d(x, f, padding=1)),
    ("upfirdn2d_general", lambda x, f: upfirdn2d.upfirdn2d(x, f, up=2, down=1, padding=[1, 2, 0, 3],
                                                           flip_filter=True, gain=3)),
])
def test_upfirdn2d_matches_reference(ops_io, name, call):
    x = torch.tensor(ops_io["x"])
    f = torch.tensor(ops_io["filter_1331"])
    assert _diff(call(x, f), ops_io[name]) <= OPS_TOL


@pytest.mark.parametrize("act", sorted(bias_act.ACTIVATIONS))
def test_bias_act_matches_reference(ops_io, act):
    x, b = torch.tensor(ops_io["x"]), torch.tensor(ops_io["bias"])
    assert _diff(bias_act.bias_act(x, b, act=act), ops_io[f"bias_act_{act}"]) <= OPS_TOL


def test_bias_act_gain_clamp_matches_reference(ops_io):
    x, b = torch.tensor(ops_io["x"]), torch.tensor(ops_io["bias"])
    y = bias_act.bias_act(x, b, act="lrelu", gain=2, clamp=0.5)
    assert _diff(y, ops_io["bias_act_lrelu_gain_clamp"]) <= OPS_TOL
    assert float(y.abs().max()) <= 0.5


def _double(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()


@pytest.mark.parametrize("act", sorted(bias_act.ACTIVATIONS))
@pytest.mark.parametrize("gain, clamp", [(None, None), (0.7, 0.8)])
def test_bias_act_gradients(act, gain, clamp):
    # Values within 1e-3 of a kink (0 or +-clamp) would make finite differences meaningless; keep them away.
    x = _double(2, 3, 2, 2)
    with torch.no_grad():
        x += 0.01 * torch.sign(x)
    b = _double(3, seed=1)
    fn = lambda x, b: bias_act.bias_act(x, b, act=act, gain=gain, clamp=clamp)  # noqa: E731
    assert gradcheck(fn, (x, b), eps=1e-6, atol=1e-5)
    assert gradgradcheck(fn, (x, b), eps=1e-6, atol=1e-5)


def test_bias_act_bias_on_other_dim_and_no_bias():
    x = torch.randn(4, 6)
    b = torch.randn(6)
    assert torch.allclose(bias_act.bias_act(x, b, dim=1, act="relu", gain=1), torch.relu(x + b))
    assert torch.allclose(bias_act.bias_act(x.t(), b, dim=0, act="lrelu", alpha=0.1, gain=1),
                          F.leaky_relu(x.t() + b[:, None], 0.1))
    assert torch.equal(bias_act.bias_act(x), x)


def test_bias_act_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown activation"):
        bias_act.bias_act(torch.zeros(2, 3), act="gelu2")
    with pytest.raises(ValueError, match="does not match"):
        bias_act.bias_act(torch.zeros(2, 3), torch.zeros(4))


@pytest.mark.parametrize("kwargs", [
    dict(up=2), dict(down=2), dict(up=2, down=2), dict(padding=[1, 2, 0, 3]), dict(padding=[-1, 2, 1, -2]),
    dict(flip_filter=True, padding=1), dict(up=[2, 1], down=[1, 2], padding=[1, 0, 2, 1], gain=3),
    dict(up=3, padding=2, flip_filter=True, gain=0.5),
])
@pytest.mark.parametrize("separable", [False, True])
def test_upfirdn2d_gradients(kwargs, separable):
    x = _double(1, 1, 5, 6)
    f = upfirdn2d.setup_filter([1, 2, 4, 1], separable=separable).double()
    if not separable:
        f = f + 0.01 * torch.arange(16, dtype=torch.float64).reshape(4, 4)  # asymmetric: exercises the flips
    fn = lambda x: upfirdn2d.upfirdn2d(x, f, **kwargs)  # noqa: E731
    assert gradcheck(fn, (x,), fast_mode=True)
    assert gradgradcheck(fn, (x,), fast_mode=True)


def _upfirdn2d_naive(x: np.ndarray, f: np.ndarray, up, down, pad: list[int], flip: bool,
                     gain: float) -> np.ndarray:
    """Literal definition: zero-insert, pad/crop, true 2D convolution (valid), subsample (up/down: int or (x, y))."""
    upx, upy = (up, up) if isinstance(up, int) else up
    downx, downy = (down, down) if isinstance(down, int) else down
    n, c, h, w = x.shape
    u = np.zeros((n, c, h * upy, w * upx))
    u[:, :, ::upy, ::upx] = x
    px0, px1, py0, py1 = pad
    u = np.pad(u, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    u = u[:, :, max(-py0, 0):u.shape[2] - max(-py1, 0), max(-px0, 0):u.shape[3] - max(-px1, 0)]
    k = (f if flip else f[::-1, ::-1]) * gain
    fh, fw = k.shape
    out = np.zeros((n, c, u.shape[2] - fh + 1, u.shape[3] - fw + 1))
    for i in range(fh):
        for j in range(fw):
            out += k[i, j] * u[:, :, i:i + out.shape[2], j:j + out.shape[3]]
    return out[:, :, ::downy, ::downx]


@pytest.mark.parametrize("up, down, pad, flip", [(1, 1, [0, 0, 0, 0], False), (2, 1, [2, 1, 2, 1], False),
                                                  (1, 2, [1, 1, 1, 1], True), (2, 2, [0, 3, 1, -1], True),
                                                  (4, 1, [-2, 5, 3, 0], False)])
def test_upfirdn2d_against_literal_definition(up, down, pad, flip):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    f = rng.standard_normal((3, 4))
    y = upfirdn2d.upfirdn2d(torch.tensor(x), torch.tensor(f, dtype=torch.float32), up=up, down=down, padding=pad,
                            flip_filter=flip, gain=1.5)
    assert np.abs(y.numpy() - _upfirdn2d_naive(x, f, up, down, pad, flip, 1.5)).max() < 1e-5


def test_upfirdn2d_edge_cases_crop_more_than_the_input():
    # width 1, upsampled to 2, then cropped by 2 after padding by 1: F.pad alone fails ("narrow(): length must be
    # non-negative"); so do random small shapes with large negative padding, 1D and 2D filters.
    x = torch.randn(1, 1, 5, 1, dtype=torch.float64)
    y = upfirdn2d.upfirdn2d(x, torch.ones(4, 1), up=[2, 2], down=[2, 3], padding=[-2, 1, 0, 1])
    ref = _upfirdn2d_naive(x.numpy(), np.ones((4, 1)), (2, 2), (2, 3), [-2, 1, 0, 1], False, 1.0)
    assert y.shape == ref.shape == (1, 1, 3, 1) and np.abs(y.numpy() - ref).max() < 1e-12
    rng = np.random.default_rng(1)
    cases = 0
    while cases < 60:
        h, w, fh, fw, upx, upy, downx, downy = (int(v) for v in rng.integers(1, [5, 5, 5, 5, 4, 4, 4, 4]))
        pad = [int(v) for v in rng.integers(-4, 4, size=4)]
        if h * upy + pad[2] + pad[3] < fh or w * upx + pad[0] + pad[1] < fw:
            continue  # no output pixel: not a valid call
        separable = fh == fw and rng.random() < 0.3
        f = rng.standard_normal(fw if separable else (fh, fw))
        x = rng.standard_normal((1, 2, h, w))
        flip = bool(rng.random() < 0.5)
        y = upfirdn2d.upfirdn2d(torch.tensor(x), torch.tensor(f), up=[upx, upy], down=[downx, downy], padding=pad,
                                flip_filter=flip, gain=2.0)
        f2 = np.outer(f, f) if separable else f
        ref = _upfirdn2d_naive(x, f2, (upx, upy), (downx, downy), pad, flip, 2.0)
        assert y.shape == ref.shape and np.abs(y.numpy() - ref).max() < 1e-10, (h, w, f.shape, upx, upy, pad)
        cases += 1


def _conv2d_resample_naive(x, w, f, up, down, padding, groups, flip_weight):
    """Zero-insert + filter, plain convolution, filter + subsample: the definition, with no fast path."""
    pad = upfirdn2d.resample_padding(f, padding, up, down) if up > 1 or down > 1 else padding
    x = upfirdn2d.upfirdn2d(x, f if up > 1 else None, up=up, padding=pad, gain=up ** 2)
    x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
    return upfirdn2d.upfirdn2d(x, f, down=down) if down > 1 else x


@pytest.mark.parametrize("k, up, down, padding, groups, flip_weight", [
    (3, 1, 1, 1, 1, True), (3, 2, 1, 1, 1, False), (3, 1, 2, 1, 1, True), (1, 2, 1, 0, 1, True),
    (1, 1, 2, 0, 1, True), (3, 2, 1, 1, 2, False), (3, 1, 2, 1, 2, True), (3, 2, 2, 1, 1, True),
    (3, 1, 1, [0, 2, 1, 1], 1, True),
])
def test_conv2d_resample_fast_paths_equal_definition(k, up, down, padding, groups, flip_weight):
    x = _double(2, 4, 8, 8)
    w = _double(6, 4 // groups, k, k, seed=1)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    y = conv2d_resample.conv2d_resample(x, w, f=f, up=up, down=down, padding=padding, groups=groups,
                                        flip_weight=flip_weight)
    ref = _conv2d_resample_naive(x, w, f, up, down, padding, groups, flip_weight)
    assert y.shape == ref.shape
    assert torch.allclose(y, ref, atol=1e-10)


def test_impl_dispatch(monkeypatch):
    x = torch.randn(1, 2, 4, 4)
    f = upfirdn2d.setup_filter([1, 1])
    with pytest.raises(ValueError, match="impl"):
        upfirdn2d.upfirdn2d(x, f, impl="fast")
    with pytest.raises(RuntimeError, match="CUDA"):
        bias_act.bias_act(x, impl="cuda")  # a CPU tensor can never take the CUDA path
    monkeypatch.setenv("STYLEGAN_ADA_OPS", "ref")
    assert torch.equal(upfirdn2d.upfirdn2d(x, f, impl="auto"), upfirdn2d.upfirdn2d(x, f, impl="ref"))
    monkeypatch.setenv("STYLEGAN_ADA_OPS", "bogus")
    with pytest.raises(ValueError, match="STYLEGAN_ADA_OPS"):
        bias_act.bias_act(x)


def test_impl_cuda_unavailable_says_why(monkeypatch):
    from types import SimpleNamespace

    from stylegan_ada.ops import _dispatch, cuda_backend

    monkeypatch.delenv(_dispatch.ENV_VAR, raising=False)
    monkeypatch.setattr(cuda_backend, "load", lambda: None)
    monkeypatch.setattr(cuda_backend, "last_error", lambda: "nvcc not found on PATH")
    fake_cuda_tensor = SimpleNamespace(device=torch.device("cuda"))  # dispatch only looks at .device
    with pytest.raises(RuntimeError, match=r"impl='cuda' requested but .* not available \(nvcc not found on PATH\)"):
        _dispatch.use_cuda("upfirdn2d", fake_cuda_tensor, "cuda")


def test_bias_shape_is_checked_before_dispatch(monkeypatch):
    def must_not_dispatch(*args):
        raise AssertionError("dispatched a call with a bad bias")

    monkeypatch.setattr(bias_act, "use_cuda", must_not_dispatch)
    for x, b, dim in ((torch.zeros(2, 3), torch.zeros(4), 1), (torch.zeros(2, 3), torch.zeros(3, 1), 1),
                      (torch.zeros(2, 3), torch.zeros(3), 2)):
        with pytest.raises(ValueError, match="does not match dim"):
            bias_act.bias_act(x, b, dim=dim, impl="cuda")


def test_grid_sample_matches_pytorch_to_second_order():
    """Our twice-differentiable grid_sample (CUDA's native one has no double backward) equals F.grid_sample in value,
    image gradient and the gradient of a function of the image gradient (what R1 on augmented reals uses)."""
    from stylegan_ada.ops.grid_sample import grid_sample

    gen = torch.Generator().manual_seed(0)
    x = torch.randn([2, 3, 7, 9], generator=gen, dtype=torch.float64)
    theta = torch.eye(2, 3, dtype=torch.float64)[None].repeat(2, 1, 1) + 0.3 * torch.randn([2, 2, 3], generator=gen,
                                                                                            dtype=torch.float64)
    grid = F.affine_grid(theta, [2, 3, 11, 8], align_corners=False)
    w = torch.randn([2, 3, 11, 8], generator=gen, dtype=torch.float64)  # makes the output depend on "D's weights"
    results = []
    for fn in (grid_sample, lambda a, g: F.grid_sample(a, g, mode="bilinear", padding_mode="zeros",
                                                       align_corners=False)):
        xa, wa = x.clone().requires_grad_(), w.clone().requires_grad_()
        y = fn(xa, grid)
        (dx,) = torch.autograd.grad((y * wa).square().sum(), xa, create_graph=True)
        (dw,) = torch.autograd.grad(dx.square().sum(), wa)
        results.append((y, dx, dw))
    for ours, theirs in zip(*results):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradgradcheck(lambda a: grid_sample(a, grid), (x.clone().requires_grad_(),))
