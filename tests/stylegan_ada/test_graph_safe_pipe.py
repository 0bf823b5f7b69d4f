"""The graph-safe ADA pipe (--cuda-graphs) against the plain pipe: the same draws, the same images.

Truth: the plain AugmentPipe (itself checked against the reference's outputs in test_augment_pipe*.py). Tolerance:
the float32 transforms are normalised by a larger padded size, so grid coordinates round differently; measured on
32 px images over bgc/bgcfnc/blit/geom and p 0.3-1: max abs diff 8e-5, and 1.5e-5 with float64 images (the float32
matrices), i.e. rounding, not a different sampling.
"""
from __future__ import annotations

import pytest
import torch

from tests.support.threads import one_torch_thread

TOL = 2e-4


def _images(seed: int, n: int = 4, size: int = 16) -> torch.Tensor:
    return torch.rand([n, 3, size, size], generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _both(pipe, safe, x, seed):
    torch.manual_seed(seed)
    a = pipe(x)
    torch.manual_seed(seed)
    return a, safe(x)


@pytest.mark.parametrize("spec, p, size", [("bgc", 1.0, 16), ("bgcfnc", 0.5, 32), ("blit", 1.0, 16), ("geom", 0.3, 16)])
def test_same_random_draws_give_the_plain_pipes_images(spec, p, size):
    from stylegan_ada.ada.graph_safe import graph_safe_copy
    from stylegan_ada.augment_pipe import make_augment_pipe

    with one_torch_thread():
        pipe = make_augment_pipe(spec, p=p)
        safe = graph_safe_copy(pipe)
        for seed in range(3):
            x = _images(seed, size=size)  # image-space filtering needs > 21 px
            a, b = _both(pipe, safe, x, seed)
            assert not torch.equal(a, x)  # something was augmented
            assert (a - b).abs().max().item() <= TOL * max(1.0, a.abs().max().item())


def test_no_transform_is_exactly_the_input_and_p_is_shared():
    from stylegan_ada.ada.graph_safe import graph_safe_copy
    from stylegan_ada.augment_pipe import make_augment_pipe

    pipe = make_augment_pipe("bg", p=0.0)
    safe = graph_safe_copy(pipe)
    x = _images(0)
    torch.manual_seed(0)
    assert torch.equal(safe(x), x)  # the mask keeps the input, as the plain pipe's skip does
    pipe.p.fill_(0.7)  # ADA adjusts the pipe's p in place; the graph-safe copy must follow
    assert float(safe.p) == pytest.approx(0.7)
    a, b = _both(pipe, safe, x, 1)
    assert not torch.equal(b, x) and (a - b).abs().max().item() <= TOL * max(1.0, a.abs().max().item())


def test_graph_safe_pipe_traces_as_one_graph_and_the_plain_one_does_not():
    import torch._dynamo

    from stylegan_ada.ada.graph_safe import graph_safe_copy
    from stylegan_ada.augment_pipe import make_augment_pipe

    pipe = make_augment_pipe("bgc", p=0.5)
    safe = graph_safe_copy(pipe)
    x = _images(2, n=2, size=8)
    with one_torch_thread():
        assert torch._dynamo.explain(pipe)(x).graph_break_count > 0  # the host-side padding (.tolist())
        torch._dynamo.reset()
        torch.manual_seed(3)
        a = torch.compile(safe, backend="eager", fullgraph=True)(x)  # fullgraph: any break is an error
        torch.manual_seed(3)
        b = safe(x)
    assert a.shape == x.shape and torch.equal(a, b)
