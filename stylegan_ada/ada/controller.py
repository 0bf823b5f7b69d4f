"""The ADA heuristic: adjust the augmentation strength p from the discriminator's overfitting on reals.

r_t = E[sign(D(real))] over the last ``interval`` minibatches; p moves by
``sign(r_t - target) * batch * interval / (ada_kimg * 1000)`` and is clamped at 0 (not at 1, like the
reference), so p can go from 0 to 1 in ``ada_kimg`` thousand images.
"""
from __future__ import annotations

from typing import Any

import torch


class AdaController:
    """Accumulates sign(D(real)) and adjusts ``augment_pipe.p`` every ``interval`` minibatches.

    Usage per training minibatch: ``accumulate(real_logits)`` for every D pass on reals, then
    ``end_minibatch(augment_pipe)`` once. The sum of signs stays on the device and the count is a Python int, so
    nothing synchronises with the host (no device->host read, no host->device copy) until :attr:`r_t` or
    :meth:`state_dict` is read. Under ``torch.distributed`` the sums are all-reduced, so every
    rank gets the same p. ``batch`` is the global batch size (all processes together).
    """

    def __init__(self, target: float = 0.6, ada_kimg: float = 500, interval: int = 4, batch: int = 32):
        if not 0 <= target <= 1:
            raise ValueError(f"ADA target must be in [0, 1], got {target}")
        if ada_kimg <= 0 or interval < 1 or batch < 1:
            raise ValueError(f"need ada_kimg > 0, interval >= 1 and batch >= 1 (got {ada_kimg}, {interval}, {batch})")
        self.target = float(target)
        self.ada_kimg = float(ada_kimg)
        self.interval = int(interval)
        self.batch = int(batch)
        self._sign_sum: torch.Tensor | None = None  # sum of signs since the last adjustment (float64, on device)
        self._count = 0                               # how many signs that sum holds
        self._last_rt: torch.Tensor | None = None
        self.minibatches = 0  # minibatches since the start of training; every interval-th one adjusts p
        self.adjustments = 0

    @property
    def step_size(self) -> float:
        """Change of p per adjustment."""
        return self.batch * self.interval / (self.ada_kimg * 1000)

    @property
    def r_t(self) -> float | None:
        """Last measured E[sign(D(real))] (None before the first measurement; reading it synchronises)."""
        value = float("nan") if self._last_rt is None else float(self._last_rt)
        return None if value != value else value

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add the signs of D's outputs on (augmented) real images."""
        logits = real_logits.detach()
        signs = logits.sign().sum().to(torch.float64)
        self._sign_sum = signs if self._sign_sum is None else self._sign_sum + signs.to(self._sign_sum.device)
        self._count += logits.numel()

    def end_minibatch(self, augment_pipe: torch.nn.Module) -> bool:
        """Count one minibatch; every ``interval`` minibatches update ``augment_pipe.p``. True at those points."""
        self.minibatches += 1
        if self.minibatches % self.interval != 0:
            return False
        p = augment_pipe.p
        stats = torch.zeros([2], dtype=torch.float64, device=p.device)
        if self._sign_sum is not None:
            stats[0] += self._sign_sum.to(p.device)
        stats[1] = float(self._count)  # a fill with a Python scalar: a kernel launch, no host->device copy
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stats)
        self._sign_sum, self._count = None, 0
        total, count = stats[0], stats[1]
        rt = total / count.clamp(min=1)
        # No D pass on reals in this interval: nothing measured, p stays (the reference would turn p into NaN).
        adjust = torch.where(count > 0, torch.sign(rt - self.target) * self.step_size, torch.zeros_like(rt))
        with torch.no_grad():
            p.copy_((p + adjust.to(p.dtype)).clamp(min=0))
        self._last_rt = torch.where(count > 0, rt, self._last_rt if self._last_rt is not None else rt * float("nan"))
        self.adjustments += 1
        return True

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (plain Python values; p itself lives in the augment pipe)."""
        sign_sum = 0.0 if self._sign_sum is None else float(self._sign_sum)
        count = self._count
        return {
            "target": self.target, "ada_kimg": self.ada_kimg, "interval": self.interval, "batch": self.batch,
            "sign_sum": sign_sum, "count": count, "minibatches": self.minibatches, "adjustments": self.adjustments,
            "r_t": self.r_t,
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Restore the accumulators and counters; the settings (target, speed, ...) stay as constructed."""
        self._count = int(state["count"])
        self._sign_sum = None
        if self._count:
            self._sign_sum = torch.tensor(float(state["sign_sum"]), dtype=torch.float64, device=device)
        self.minibatches = int(state["minibatches"])
        self.adjustments = int(state["adjustments"])
        self._last_rt = None if state["r_t"] is None else torch.tensor(float(state["r_t"]), dtype=torch.float64,
                                                                       device=device)
