"""Learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks", sec. 3.3).

The learning rate grows exponentially from ``start`` to ``end`` over ``steps`` mini-batches while the training loss
is recorded. Two pick rules, both computed on every sweep (metrics.json keeps both candidates):

- ``min10`` (the toolkit's default): the learning rate at the minimum of the smoothed loss (exponential moving
  average 0.9, bias-corrected) divided by 10, ignoring the first 10 % of the sweep while the average settles. It is
  stable on the noisy curves of tiny data sets, but it can never pick above ``end`` / 10.
- ``steepest`` (the thesis' rule: torch-lr-finder's ``LRFinder.plot(suggest_lr=True)``): the loss smoothed as
  torch-lr-finder does (``s_0 = l_0``, ``s_k = 0.05 l_k + 0.95 s_(k-1)``), the first 10 and last 5 points dropped,
  then the learning rate at the most negative ``numpy.gradient`` of that curve (per step, not per log-lr).

The sweep stops early as the chosen rule's tool does: ``min10`` once its smoothed loss exceeds 4x its minimum,
``steepest`` once torch-lr-finder's smoothed loss exceeds 5x its minimum (its ``diverge_th``), and either on a
non-finite loss. The model and optimizer are restored afterwards.
"""
from __future__ import annotations

import copy
import math
import warnings
from typing import Any, Callable, Iterable, Sequence

import numpy as np

PICK_RULES = {
    "min10": "lr at the minimum of the smoothed loss / 10",
    "steepest": "lr at the steepest descent of the smoothed loss (torch-lr-finder suggestion: smooth_f 0.05, "
                "skip_start 10, skip_end 5, argmin of numpy.gradient)",
}
PICK_RULE = PICK_RULES["min10"]
SMOOTHING = 0.9          # min10: exponential moving average of the loss (bias-corrected)
DIVERGE_FACTOR = 4.0     # min10: stop once the smoothed loss exceeds this x its minimum
LRFINDER_SMOOTH_F = 0.05  # torch-lr-finder range_test(smooth_f=0.05): weight of the newest loss
LRFINDER_DIVERGE = 5.0    # torch-lr-finder range_test(diverge_th=5)
LRFINDER_SKIP_START = 10  # torch-lr-finder plot(skip_start=10, skip_end=5)
LRFINDER_SKIP_END = 5


def _cycle(loader: Iterable) -> Iterable:
    while True:
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            return


def suggest_lr(lrs: list[float], losses: list[float]) -> float:
    """The ``min10`` rule applied to a recorded sweep (``losses``: the bias-corrected moving average)."""
    if not lrs:
        raise ValueError("empty LR sweep")
    skip = min(len(losses) - 1, len(losses) // 10)
    i = min(range(skip, len(losses)), key=lambda k: losses[k])
    return lrs[i] / 10.0


def ema_smooth(raw: Sequence[float]) -> list[float]:
    """The ``min10`` curve: exponential moving average (factor 0.9) with bias correction."""
    avg, out = 0.0, []
    for k, value in enumerate(raw):
        avg = SMOOTHING * avg + (1 - SMOOTHING) * value
        out.append(avg / (1 - SMOOTHING ** (k + 1)))
    return out


def lrfinder_smooth(raw: Sequence[float]) -> list[float]:
    """torch-lr-finder's smoothing of the raw losses: the first as is, then 0.05 x new + 0.95 x previous."""
    out: list[float] = []
    for value in raw:
        out.append(value if not out else LRFINDER_SMOOTH_F * value + (1 - LRFINDER_SMOOTH_F) * out[-1])
    return out


def steepest_lr(lrs: Sequence[float], smoothed: Sequence[float]) -> tuple[float, str | None]:
    """The ``steepest`` rule on torch-lr-finder's smoothed curve: (lr, None), or (lr, why the trimming was dropped)
    when fewer than 2 points remain after skipping the first 10 and last 5 (torch-lr-finder gives no suggestion
    there; we take the steepest point of the whole curve, or the only learning rate tried)."""
    if not lrs:
        raise ValueError("empty LR sweep")
    end = len(lrs) - LRFINDER_SKIP_END
    xs, ys, note = list(lrs[LRFINDER_SKIP_START:end]), list(smoothed[LRFINDER_SKIP_START:end]), None
    if len(ys) < 2:
        need = LRFINDER_SKIP_START + LRFINDER_SKIP_END + 2
        note = (f"the LR sweep has only {len(lrs)} point(s), fewer than the {need} the steepest rule needs after "
                "trimming; picked on the untrimmed curve (raise --lr-range-steps)")
        xs, ys = list(lrs), list(smoothed)
    if len(ys) < 2:
        return float(xs[0]), note
    return float(xs[int(np.argmin(np.gradient(np.asarray(ys, dtype=float))))]), note


def pick_candidates(lrs: Sequence[float], raw: Sequence[float]) -> tuple[dict[str, float], str | None]:
    """Both rules' learning rates for one sweep of raw losses, and the steepest rule's fallback note (or None)."""
    steepest, note = steepest_lr(lrs, lrfinder_smooth(raw))
    return {"min10": suggest_lr(list(lrs), ema_smooth(raw)), "steepest": steepest}, note


def _diverged(raw: list[float], pick: str) -> bool:
    curve = lrfinder_smooth(raw) if pick == "steepest" else ema_smooth(raw)
    factor = LRFINDER_DIVERGE if pick == "steepest" else DIVERGE_FACTOR
    return len(curve) > 1 and curve[-1] > factor * min(curve)


def lr_range_test(model: Any, optimizer: Any, loader: Iterable, step_loss: Callable[[Any], Any], *,
                  start: float = 1e-6, end: float = 1.0, steps: int = 50, pick: str = "min10") -> dict[str, Any]:
    """Run the sweep with ``optimizer`` (its lr is overwritten) and ``step_loss(batch) -> loss tensor``.

    Returns ``{"lrs", "losses" (min10's smoothed curve), "lrfinder_losses" (steepest's), "raw_losses",
    "candidates" {rule: lr}, "pick", "rule", "suggested_lr" (the picked candidate), ...}``; model and optimizer
    states are restored.
    """
    if pick not in PICK_RULES:
        raise ValueError(f"unknown LR pick rule {pick!r}")
    model_state = copy.deepcopy(model.state_dict())
    opt_state = copy.deepcopy(optimizer.state_dict())
    factor = (end / start) ** (1.0 / max(1, steps - 1))
    lrs: list[float] = []
    raw: list[float] = []
    try:
        for k, batch in zip(range(steps), _cycle(loader)):
            lr = start * factor ** k
            for g in optimizer.param_groups:
                g["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            loss = step_loss(batch)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                break
            lrs.append(lr)
            raw.append(value)
            if _diverged(raw, pick):
                break
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(opt_state)
    candidates, note = pick_candidates(lrs, raw) if lrs else ({"min10": start, "steepest": start}, None)
    if note and pick == "steepest":
        warnings.warn(note, stacklevel=2)
    return {"lrs": lrs, "losses": ema_smooth(raw), "lrfinder_losses": lrfinder_smooth(raw), "raw_losses": raw,
            "candidates": candidates, "pick": pick, "rule": PICK_RULES[pick], "suggested_lr": candidates[pick],
            "note": note if pick == "steepest" else None, "start": start, "end": end, "steps": steps}
