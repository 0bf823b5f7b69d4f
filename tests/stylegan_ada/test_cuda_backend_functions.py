"""CUDA autograd functions, the parts checkable on CPU: the adjoint used by upfirdn2d's backward, the activation
codes shared with the kernel, and clear errors for CPU tensors. Values are checked on a GPU by
`tools/check_cuda_ops.py`."""
from __future__ import annotations

import itertools
import re

import pytest
import torch

from stylegan_ada.ops import bias_act, cuda_backend, upfirdn2d
from stylegan_ada.ops.upfirdn2d_cuda import _adjoint, _Config, cuda_upfirdn2d
from stylegan_ada.ops.bias_act_cuda import cuda_bias_act

# An asymmetric 2D filter (catches any flip/offset slip) and a separable one (the two-pass path).
FILTERS = {"rand3x2": torch.randn([3, 2], generator=torch.Generator().manual_seed(0)),
           "sep8": upfirdn2d.setup_filter([1, 2, 3, 4, 4, 3, 2, 1])}


@pytest.mark.parametrize("fname", FILTERS)
def test_backward_config_is_the_adjoint_of_the_forward(fname):
    """The config our backward applies to dy gives exactly autograd's gradient of the reference path."""
    f = FILTERS[fname].double()
    gen = torch.Generator().manual_seed(1)
    checked = 0
    for ((upx, upy), (downx, downy)), pad, (flip, gain) in itertools.product(
            [((1, 1), (1, 1)), ((2, 2), (1, 1)), ((1, 1), (2, 2)), ((1, 3), (3, 1))],
            [(1, 2, 0, 3), (3, -1, 2, 1)], [(False, 1.0), (True, 3.0)]):
        cfg = _Config(upx, upy, downx, downy, *pad, flip, gain)
        x = torch.randn([1, 1, 9, 11], generator=gen, dtype=torch.float64, requires_grad=True)
        y = upfirdn2d.upfirdn2d_ref(x, f, up=[upx, upy], down=[downx, downy], padding=list(pad), flip_filter=flip,
                                    gain=gain)
        dy = torch.randn(y.shape, generator=gen, dtype=torch.float64)
        (expected,) = torch.autograd.grad(y, x, dy)
        adj = _adjoint(cfg, (9, 11), (y.shape[2], y.shape[3]), f)
        got = upfirdn2d.upfirdn2d_ref(dy, f, up=[adj.up_x, adj.up_y], down=[adj.down_x, adj.down_y],
                                      padding=[adj.pad_x0, adj.pad_x1, adj.pad_y0, adj.pad_y1],
                                      flip_filter=adj.flip_filter, gain=adj.gain)
        assert got.shape == x.shape
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12, msg=f"{fname} {cfg}")
        checked += 1
    assert checked == 16


def test_kernel_activation_codes_match_the_activation_table():
    """ops_kernels.h numbers activations like the `cuda_idx` of bias_act.ACTIVATIONS; a drift would silently swap
    activations on the GPU."""
    header = (cuda_backend.CSRC_DIR / "ops_kernels.h").read_text()
    codes = {name.lower(): int(value) for name, value in re.findall(r"kAct(\w+) = (\d+)", header)}
    assert codes == {name: spec.cuda_idx for name, spec in bias_act.ACTIVATIONS.items()}


def test_cuda_functions_reject_cpu_tensors_with_a_clear_message():
    x = torch.zeros([1, 2, 4, 4])
    with pytest.raises(ValueError, match="needs a CUDA tensor, got one on cpu; use impl='auto' or impl='ref'"):
        cuda_bias_act(x, torch.zeros(2), act="lrelu")
    with pytest.raises(ValueError, match="needs a CUDA tensor, got one on cpu"):
        cuda_upfirdn2d(x, upfirdn2d.setup_filter([1, 3, 3, 1]), up=2)


class _ReferencePlugin:
    """Stands in for the compiled extension on CPU: same entry points, computed by the reference path, so the Python
    glue of the CUDA autograd functions (layouts, saved tensors, configs, adjoints) runs in CI without a GPU."""

    def bias_act(self, x, b, g1, g2, mode, dim, act_code, alpha, gain, clamp):
        act = next(name for name, spec in bias_act.ACTIVATIONS.items() if spec.cuda_idx == act_code)
        args = dict(dim=dim, act=act, alpha=alpha, gain=gain, clamp=None if clamp < 0 else clamp)
        if mode == 0:
            return bias_act.bias_act_ref(x, b, **args)
        if mode == 1:
            with torch.enable_grad():
                xg = x.detach().requires_grad_()
                (dx,) = torch.autograd.grad(bias_act.bias_act_ref(xg, b, **args), xg, g1)
            return dx
        raise NotImplementedError("second derivative: checked on a GPU by tools/check_cuda_ops.py")

    def upfirdn2d(self, x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, tap_gain):
        if min((x.shape[2] * upy + pady0 + pady1 - f.shape[0]) // downy, (x.shape[3] * upx + padx0 + padx1
                                                                            - f.shape[1]) // downx) < 0:
            raise RuntimeError("upfirdn2d: padding/filter leave an empty output")  # like the kernel
        return upfirdn2d.upfirdn2d_ref(x, f * tap_gain, up=[upx, upy], down=[downx, downy],
                                       padding=[padx0, padx1, pady0, pady1], flip_filter=flip)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_autograd_glue_matches_the_reference_path(monkeypatch, layout):
    """Forward and first-order gradient through _BiasActCuda/_Upfirdn2dCuda with the kernels stood in for: catches
    Python-level slips (a GPU run once found `Tensor.is_non_overlapping_and_dense`, which exists only in C++)."""
    from stylegan_ada.ops import bias_act_cuda, upfirdn2d_cuda

    monkeypatch.setattr(cuda_backend, "load", lambda: _ReferencePlugin())
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn([2, 6, 8, 10], generator=gen, dtype=torch.float64)
    x = {"contiguous": x0, "channels_last": x0.to(memory_format=torch.channels_last),
         "strided": torch.randn([2, 6, 10, 8], generator=gen, dtype=torch.float64).transpose(2, 3)}[layout]
    b = torch.randn([6], generator=gen, dtype=torch.float64)
    cfg = bias_act_cuda._Config(1, bias_act.ACTIVATIONS["lrelu"].cuda_idx, 0.2, 2 ** 0.5, 0.5, True)
    f = FILTERS["sep8"]  # float32 taps on float64 images, gain 3: the gain is applied before the cast, as in ref
    ucfg = _Config(2, 2, 1, 1, 2, 1, 1, 2, False, 3.0)
    for fn, ref in [(lambda t: bias_act_cuda._BiasActCuda.apply(t, b, cfg),
                     lambda t: bias_act.bias_act_ref(t, b, act="lrelu", clamp=0.5)),
                    (lambda t: upfirdn2d_cuda._Upfirdn2dCuda.apply(t, f, ucfg),
                     lambda t: upfirdn2d.upfirdn2d_ref(t, f, up=2, padding=[2, 1, 1, 2], gain=3.0))]:
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = fn(xa), ref(xb)
        torch.testing.assert_close(ya, yb, rtol=1e-13, atol=1e-13)
        dy = torch.randn(yb.shape, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(torch.autograd.grad(ya, xa, dy)[0], torch.autograd.grad(yb, xb, dy)[0],
                                   rtol=1e-13, atol=1e-13)


def test_empty_output_is_returned_not_refused(monkeypatch):
    """The kernel refuses an empty output; the glue returns the reference path's empty tensor and a zero gradient."""
    from stylegan_ada.ops import upfirdn2d_cuda

    monkeypatch.setattr(cuda_backend, "load", lambda: _ReferencePlugin())
    x = torch.randn([1, 2, 1, 1], dtype=torch.float64, requires_grad=True)
    f = torch.randn([2, 2], dtype=torch.float64)
    y = upfirdn2d_cuda._Upfirdn2dCuda.apply(x, f, _Config(2, 2, 2, 2, -1, 0, -1, 0, False, 1.0))
    ref = upfirdn2d.upfirdn2d_ref(x, f, up=2, down=2, padding=[-1, 0, -1, 0])
    assert y.shape == ref.shape == (1, 2, 0, 0)
    (dx,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    assert dx is not None and dx.shape == x.shape and not dx.any()
