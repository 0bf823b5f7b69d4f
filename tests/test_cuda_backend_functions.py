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
