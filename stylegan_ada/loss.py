"""StyleGAN2 loss with lazy regularization: the four training phases of the paper (and the reference).

* ``Gmain``: non-saturating logistic loss for G, softplus(-D(G(z))).
* ``Greg``: path-length regularization for G on a batch shrunk by ``pl_batch_shrink``.
* ``Dmain``: logistic loss for D, softplus(D(G(z))) + softplus(-D(x)).
* ``Dreg``: R1 penalty gamma/2 * |grad_x D(x)|^2 on (augmented) reals.
* ``Gboth`` / ``Dboth``: main + reg in one pass, used when lazy regularization is off.

Every random draw (style-mixing cutoff and second z, path-length noise, noise inputs of G, the augment pipe) comes from
the global torch generator, which the training loop re-seeds per (step, phase, round); that makes a step's result
depend only on the seed and the step index, so resume and multi-process runs reproduce it.

One deliberate difference from the reference: ``pl_mean`` (the running mean of path lengths) is updated once per
phase from the mean over the whole global batch (all rounds and all processes, see :meth:`end_phase`); within a phase
each round's penalty uses ``lerp(pl_mean, mean(round's lengths), pl_decay)``. With one process and one round per
phase (the usual case) this is exactly the reference; with several it makes the result independent of how the batch
is split over rounds and processes.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

PHASES = ("Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth")
Reporter = Callable[[str, torch.Tensor], None]


def _no_report(name: str, value: torch.Tensor) -> None:
    pass


class StyleGAN2Loss:
    """Accumulates the gradients of one phase for one round (a slice of the minibatch) at a time."""

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, augment_pipe: torch.nn.Module | None = None, *,
                 r1_gamma: float = 10.0, style_mixing_prob: float = 0.9, pl_weight: float = 2.0,
                 pl_batch_shrink: int = 2, pl_decay: float = 0.01, force_fp32: bool = False,
                 report: Reporter | None = None):
        self.G = G
        self.D = D
        self.augment_pipe = augment_pipe
        self.r1_gamma = float(r1_gamma)
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)
        self.force_fp32 = force_fp32
        self.report = report or _no_report
        device = next(G.parameters()).device
        self.pl_mean = torch.zeros([], device=device)
        self._pl_sum = torch.zeros([], device=device)
        self._pl_count = 0

    # ------------------------------------------------------------------------------------------------ forward passes
    def run_G(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Image and ws for latents ``z``, with style mixing (a random cutoff layer) with ``style_mixing_prob``."""
        ws = self.G.mapping(z, c)
        if self.style_mixing_prob > 0:
            num_ws = ws.shape[1]
            cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, num_ws)
            mix = torch.rand([], device=ws.device) < self.style_mixing_prob
            cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, num_ws))
            # A mask instead of ws[:, cutoff:] keeps the cutoff on the device (no host sync).
            layer = torch.arange(num_ws, device=ws.device).view(1, num_ws, 1)
            ws_mix = self.G.mapping(torch.randn_like(z), c, skip_w_avg_update=True)
            ws = torch.where(layer >= cutoff, ws_mix, ws)
        img = self.G.synthesis(ws, force_fp32=self.force_fp32)
        return img, ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c, force_fp32=self.force_fp32)

    # ------------------------------------------------------------------------------------------------------- phases
    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                             gen_c: torch.Tensor, gain: float) -> None:
        """Backpropagate ``gain`` times the phase's mean loss over this round into the parameters' ``.grad``."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; expected one of {PHASES}")
        do_Gmain = phase in ("Gmain", "Gboth")
        do_Dmain = phase in ("Dmain", "Dboth")
        do_Gpl = phase in ("Greg", "Gboth") and self.pl_weight != 0
        do_Dr1 = phase in ("Dreg", "Dboth") and self.r1_gamma != 0

        if do_Gmain:
            gen_img, _ = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c)
            self.report("Loss/scores/fake", gen_logits)
            self.report("Loss/signs/fake", gen_logits.sign())
            loss_Gmain = F.softplus(-gen_logits)  # -log(sigmoid(D(G(z))))
            self.report("Loss/G/loss", loss_Gmain)
            loss_Gmain.mean().mul(gain).backward()

        if do_Gpl:
            self._path_length_backward(gen_z, gen_c, gain)

        loss_Dgen: torch.Tensor | float = 0
        if do_Dmain:
            with torch.no_grad():  # G is not trained in this phase
                gen_img, _ = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c)
            self.report("Loss/scores/fake", gen_logits)
            self.report("Loss/signs/fake", gen_logits.sign())
            loss_Dgen = F.softplus(gen_logits)  # -log(1 - sigmoid(D(G(z))))
            loss_Dgen.mean().mul(gain).backward()

        if do_Dmain or do_Dr1:
            real_img_tmp = real_img.detach().requires_grad_(do_Dr1)
            real_logits = self.run_D(real_img_tmp, real_c)
            self.report("Loss/scores/real", real_logits)
            self.report("Loss/signs/real", real_logits.sign())
            loss_Dreal: torch.Tensor | float = 0
            if do_Dmain:
                loss_Dreal = F.softplus(-real_logits)  # -log(sigmoid(D(x)))
                self.report("Loss/D/loss", loss_Dgen + loss_Dreal)
            loss_Dr1: torch.Tensor | float = 0
            if do_Dr1:
                r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img_tmp],
                                               create_graph=True, only_inputs=True)[0]
                r1_penalty = r1_grads.square().sum([1, 2, 3])
                loss_Dr1 = r1_penalty * (self.r1_gamma / 2)
                self.report("Loss/r1_penalty", r1_penalty)
                self.report("Loss/D/reg", loss_Dr1)
            (real_logits * 0 + loss_Dreal + loss_Dr1).mean().mul(gain).backward()

    def _path_length_backward(self, gen_z: torch.Tensor, gen_c: torch.Tensor, gain: float) -> None:
        n = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
        gen_img, gen_ws = self.run_G(gen_z[:n], gen_c[:n])
        pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
        pl_grads = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws],
                                       create_graph=True, only_inputs=True)[0]
        pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
        pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
        self._pl_sum += pl_lengths.detach().sum()
        self._pl_count += n
        pl_penalty = (pl_lengths - pl_mean).square()
        self.report("Loss/pl_penalty", pl_penalty)
        loss_Gpl = pl_penalty * self.pl_weight
        self.report("Loss/G/reg", loss_Gpl)
        (gen_img[:, 0, 0, 0] * 0 + loss_Gpl).mean().mul(gain).backward()

    def end_phase(self, all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None, world_size: int = 1) -> None:
        """Fold the path lengths of the finished phase into ``pl_mean`` (summed over processes by ``all_reduce``)."""
        if self._pl_count == 0:
            return
        total = self._pl_sum if all_reduce is None else all_reduce(self._pl_sum)
        mean = total / (self._pl_count * world_size)
        self.pl_mean.copy_(self.pl_mean.lerp(mean, self.pl_decay))
        self._pl_sum.zero_()
        self._pl_count = 0
