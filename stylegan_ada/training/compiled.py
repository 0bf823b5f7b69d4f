"""``--compile`` and ``--cuda-graphs``: the main phases' G and D forward (and so backward) through ``torch.compile``.

What is compiled: ``G.mapping``, ``G.synthesis`` and D (the augment pipe runs eagerly in front of it) as the loss
calls them in the ``Gmain`` and ``Dmain`` phases, the work of every minibatch. The regularization phases (``Greg``,
``Dreg``, and ``Gboth``/``Dboth`` without lazy regularization) differentiate a gradient again (path length, R1),
which compiled graphs do not support (AOTAutograd has no double backward); they run eagerly on the same modules,
every 4 and 16 minibatches. G_ema (fakes grids, metrics) stays eager.

Our ops stay on their pure-PyTorch reference path while torch.compile traces (``stylegan_ada.ops._dispatch``): they
are plain aten ops, so they never break the graph and inductor fuses their element-wise parts itself. Random draws
(noise inputs, style mixing, ADA) use PyTorch's own generator under compile as well
(``torch._inductor.config.fallback_random``), so a compiled step draws the numbers an eager step draws and resume
stays exact; the results differ from the eager path only by float rounding (kernel fusion reorders sums).

``--cuda-graphs`` (CUDA only) compiles the same functions with ``mode="reduce-overhead"``: inductor captures each of
them into CUDA graphs and replays them, so a minibatch costs a few graph launches instead of thousands of kernel
launches. The capture needs static shapes and no host synchronisation, so the ADA pipe is replaced, inside D's
compiled function, by :class:`~stylegan_ada.ada.graph_safe.GraphSafeAugmentPipe` (same draws, fixed padding, masks
instead of branches), which shares ``p`` with the pipe ADA adjusts.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch

from stylegan_ada.loss import StyleGAN2Loss

FAST_PHASES = ("Gmain", "Dmain")  # the phases that go through the compiled functions


class CompileError(ValueError):
    """A compile knob that this device cannot use (one line)."""


def check_supported(compile: bool, cuda_graphs: bool, device: torch.device) -> None:
    """CompileError for ``cuda_graphs`` off CUDA (there is no CUDA-graph capture on a CPU)."""
    if cuda_graphs and device.type != "cuda":
        raise CompileError(f"--cuda-graphs needs a CUDA device (got {device}); drop it, or use --compile, which "
                           "works on CPU too")


class _CompiledGenerator:
    """What the loss uses of G (``mapping``, ``synthesis``, its parameters), with the two calls compiled."""

    def __init__(self, G: torch.nn.Module, compile_fn: Callable[[Any], Any]):
        self.module = G
        self.mapping = compile_fn(G.mapping)
        self.synthesis = compile_fn(G.synthesis)

    def parameters(self):
        return self.module.parameters()


class CompiledPhases:
    """The loss of each phase: with compiled G and D for the ``FAST_PHASES`` when compiling, else the eager one."""

    def __init__(self, loss: StyleGAN2Loss, *, compile: bool = False, cuda_graphs: bool = False,
                 backend: str = "inductor"):
        self.eager = loss
        self.cuda_graphs = cuda_graphs
        self.fast = _compiled_loss(loss, cuda_graphs, backend) if compile or cuda_graphs else None

    def loss_for(self, phase: str) -> StyleGAN2Loss:
        return self.fast if self.fast is not None and phase in FAST_PHASES else self.eager

    def keep(self, grads: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
        """Gradients that outlive the next round: copies with CUDA graphs, whose next replay reuses the memory of
        this one's outputs (the gradients AccumulateGrad took over); the same tensors otherwise."""
        if not self.cuda_graphs:
            return grads
        return [None if g is None else g.clone() for g in grads]

    def begin_round(self, phase: str) -> None:
        """Tell the CUDA-graph trees that a new iteration starts (outputs of the previous replay are done with)."""
        if self.cuda_graphs and phase in FAST_PHASES:
            torch.compiler.cudagraph_mark_step_begin()


def _compiled_loss(loss: StyleGAN2Loss, cuda_graphs: bool, backend: str) -> StyleGAN2Loss:
    import torch._inductor.config as inductor_config

    inductor_config.fallback_random = True  # draw from torch's generator, as eager does (see module docstring)
    mode = "reduce-overhead" if cuda_graphs else None
    fast = copy.copy(loss)  # shares G, D, the reporter and pl_mean (the main phases leave pl_mean alone)
    compile_fn = lambda fn: torch.compile(fn, backend=backend, mode=mode, dynamic=False)  # noqa: E731
    fast.G = _CompiledGenerator(loss.G, compile_fn)
    if cuda_graphs and loss.augment_pipe is not None:
        from stylegan_ada.ada.graph_safe import graph_safe_copy

        pipe, D = graph_safe_copy(loss.augment_pipe), loss.D

        def augment_and_discriminate(img: torch.Tensor, c: torch.Tensor, force_fp32: bool = False) -> torch.Tensor:
            return D(pipe(img), c, force_fp32=force_fp32)

        fast.augment_pipe = None  # inside the captured D call instead
        fast.D = compile_fn(augment_and_discriminate)
    else:
        # The plain pipe stays eager in front of the compiled D: its host-side padding would break the graph and,
        # as a Python int that changes every minibatch, make dynamo recompile again and again.
        fast.D = compile_fn(loss.D)
    return fast


def compiled_phases(loss: StyleGAN2Loss, compile: bool, cuda_graphs: bool, device: torch.device,
                    backend: str = "inductor") -> CompiledPhases:
    """The phases' losses for these knobs on ``device`` (CompileError if it cannot use them); ``cuda_graphs``
    implies compiling. Nothing compiles before the first call."""
    check_supported(compile, cuda_graphs, device)
    return CompiledPhases(loss, compile=compile, cuda_graphs=cuda_graphs, backend=backend)
