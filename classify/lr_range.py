"""Learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks", sec. 3.3).

The learning rate grows exponentially from ``start`` to ``end`` over ``steps`` mini-batches while the (smoothed)
training loss is recorded; the sweep stops early once the loss exceeds 4x its minimum. Pick rule: the learning
rate at the minimum of the smoothed loss divided by 10 ("minimum/10"), ignoring the first 10% of the sweep while the
moving average settles. It is more stable than the steepest-descent point on the noisy curves of tiny data sets.
The model and optimizer are restored afterwards.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable, Iterable

PICK_RULE = "lr at the minimum of the smoothed loss / 10"
SMOOTHING = 0.9          # exponential moving average of the loss (bias-corrected)
DIVERGE_FACTOR = 4.0


def _cycle(loader: Iterable) -> Iterable:
    while True:
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            return


def suggest_lr(lrs: list[float], losses: list[float]) -> float:
    """The pick rule applied to a recorded sweep."""
    if not lrs:
        raise ValueError("empty LR sweep")
    skip = min(len(losses) - 1, len(losses) // 10)
    i = min(range(skip, len(losses)), key=lambda k: losses[k])
    return lrs[i] / 10.0


def lr_range_test(model: Any, optimizer: Any, loader: Iterable, step_loss: Callable[[Any], Any], *,
                  start: float = 1e-6, end: float = 1.0, steps: int = 50) -> dict[str, Any]:
    """Run the sweep with ``optimizer`` (its lr is overwritten) and ``step_loss(batch) -> loss tensor``.

    Returns ``{"lrs", "losses" (smoothed), "suggested_lr", "rule", ...}``; model and optimizer states are restored.
    """
    model_state = copy.deepcopy(model.state_dict())
    opt_state = copy.deepcopy(optimizer.state_dict())
    factor = (end / start) ** (1.0 / max(1, steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    avg, best = 0.0, math.inf
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
            avg = SMOOTHING * avg + (1 - SMOOTHING) * value
            smoothed = avg / (1 - SMOOTHING ** (k + 1))
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            if k > 0 and smoothed > DIVERGE_FACTOR * best:
                break
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(opt_state)
    suggested = suggest_lr(lrs, losses) if lrs else start
    return {"lrs": lrs, "losses": losses, "suggested_lr": suggested, "rule": PICK_RULE,
            "start": start, "end": end, "steps": steps}
