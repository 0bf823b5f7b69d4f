"""Training phases and optimizers (lazy regularization), and the G_ema update.

With lazy regularization (the paper's Appendix B), G and D each get a "main" phase every minibatch and a "reg"
phase every ``reg_interval`` minibatches, sharing one Adam whose learning rate and betas are adjusted by
``mb_ratio = interval / (interval + 1)`` so the effective step matches non-lazy training. Without it, one "both"
phase per network does loss and regularization together.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from stylegan_ada.training.options import TrainingOptions


@dataclass
class Phase:
    name: str                      # Gmain, Greg, Gboth, Dmain, Dreg, Dboth
    module: torch.nn.Module
    opt: torch.optim.Optimizer
    interval: int

    @property
    def params(self) -> list[torch.nn.Parameter]:
        return [p for group in self.opt.param_groups for p in group["params"]]


def adjusted_opt_kwargs(opt_kwargs: dict, reg_interval: int | None) -> dict:
    """Adam kwargs after the lazy-regularization adjustment of lr and betas."""
    kwargs = dict(lr=float(opt_kwargs["lr"]), betas=tuple(float(b) for b in opt_kwargs.get("betas", (0, 0.99))),
                  eps=float(opt_kwargs.get("eps", 1e-8)))
    if reg_interval is not None:
        mb_ratio = reg_interval / (reg_interval + 1)
        kwargs["lr"] *= mb_ratio
        kwargs["betas"] = tuple(b ** mb_ratio for b in kwargs["betas"])
    return kwargs


def build_phases(G: torch.nn.Module, D: torch.nn.Module, options: TrainingOptions) -> list[Phase]:
    """[Gmain, Greg, Dmain, Dreg] (or Gboth/Dboth for a network without lazy regularization)."""
    phases: list[Phase] = []
    for name, module, opt_kwargs, reg_interval in (("G", G, options.G_opt_kwargs, options.G_reg_interval),
                                                   ("D", D, options.D_opt_kwargs, options.D_reg_interval)):
        opt = torch.optim.Adam(module.parameters(), **adjusted_opt_kwargs(opt_kwargs, reg_interval))
        if reg_interval is None:
            phases.append(Phase(name + "both", module, opt, 1))
        else:
            phases.append(Phase(name + "main", module, opt, 1))
            phases.append(Phase(name + "reg", module, opt, reg_interval))
    return phases


def apply_opt_kwargs(opt: torch.optim.Optimizer, opt_kwargs: dict, reg_interval: int | None) -> None:
    """Reset lr/betas/eps after loading an optimizer state (which carries the values it was saved with)."""
    kwargs = adjusted_opt_kwargs(opt_kwargs, reg_interval)
    for group in opt.param_groups:
        group.update(kwargs)


def ema_beta(options: TrainingOptions, cur_nimg: int) -> float:
    """Per-minibatch decay of G_ema: half-life ``ema_kimg`` (shorter during the ramp-up, if any)."""
    ema_nimg = options.ema_kimg * 1000
    if options.ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * options.ema_rampup)
    return 0.5 ** (options.batch / max(ema_nimg, 1e-8))


class EmaUpdater:
    """G_ema <- lerp(G, G_ema, beta) for parameters, copy for buffers; foreach kernels, no host sync."""

    def __init__(self, G: torch.nn.Module, G_ema: torch.nn.Module):
        self.params = list(G.parameters())
        self.ema_params = list(G_ema.parameters())
        self.buffers = list(G.buffers())
        self.ema_buffers = list(G_ema.buffers())

    @torch.no_grad()
    def update(self, beta: float) -> None:
        new = torch._foreach_lerp(self.params, self.ema_params, beta)  # p + beta * (p_ema - p)
        torch._foreach_copy_(self.ema_params, new)
        if self.buffers:
            torch._foreach_copy_(self.ema_buffers, self.buffers)
