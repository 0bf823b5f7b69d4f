"""Figures of one classifier run: confusion matrix (counts and row-normalised) and learning curves."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from augment.io_utils import atomic_write_bytes


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _figure().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_confusion(confusion: Sequence[Sequence[int]], classes: Sequence[str], path: Path, title: str) -> None:
    """Two panels: raw counts and rows normalised to 1 (recall per class on the diagonal)."""
    plt = _figure()
    cm = np.asarray(confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(classes)
    fig, axes = plt.subplots(1, 2, figsize=(4 + 2.2 * n, 1.5 + 1.1 * n))
    for ax, data, fmt, name in ((axes[0], cm, "{:.0f}", "counts"), (axes[1], norm, "{:.2f}", "normalized")):
        im = ax.imshow(data, cmap="Blues", vmin=0, vmax=data.max() if data.max() > 0 else 1)
        ax.set_xticks(range(n), classes, rotation=45, ha="right")
        ax.set_yticks(range(n), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name)
        thresh = data.max() / 2
        for i in range(n):
            for j in range(n):
                ax.text(j, i, fmt.format(data[i, j]), ha="center", va="center",
                        color="white" if data[i, j] > thresh else "black", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title)
    _save(fig, path)


def plot_learning_curves(history: Sequence[dict[str, float]], lr_range: dict[str, Any] | None, best_epoch: int,
                         path: Path, title: str) -> None:
    """Loss (train/val), val macro-F1 and accuracy per epoch, and the LR range test sweep when one ran."""
    plt = _figure()
    panels = 3 if lr_range and lr_range.get("lrs") else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.6))
    ep = [h["epoch"] for h in history]
    axes[0].plot(ep, [h["train_loss"] for h in history], label="train")
    axes[0].plot(ep, [h["val_loss"] for h in history], label="val")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("cross-entropy")
    axes[0].legend()
    axes[1].plot(ep, [h["val_macro_f1"] for h in history], label="val macro-F1")
    axes[1].plot(ep, [h["val_accuracy"] for h in history], label="val accuracy")
    axes[1].plot(ep, [h["train_accuracy"] for h in history], label="train accuracy", alpha=0.6)
    axes[1].axvline(best_epoch, color="gray", ls="--", lw=1, label=f"best epoch {best_epoch}")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylim(0, 1.02)
    axes[1].legend(fontsize=8)
    if panels == 3:
        _plot_lr_range(axes[2], lr_range)
        axes[2].set_xlabel("learning rate")
        axes[2].set_ylabel("smoothed loss")
        axes[2].set_title("LR range test")
        axes[2].legend(fontsize=8)
    fig.suptitle(title)
    _save(fig, path)


LR_PICK_COLOURS = {"min10": "tab:red", "steepest": "tab:purple"}


def _plot_lr_range(ax: Any, lr_range: dict[str, Any]) -> None:
    """The sweep's smoothed curve(s) and every candidate pick; the one used is solid, the others dashed."""
    ax.semilogx(lr_range["lrs"], lr_range["losses"], color="tab:blue", label="smoothed (EMA 0.9)")
    if lr_range.get("lrfinder_losses"):
        ax.semilogx(lr_range["lrs"], lr_range["lrfinder_losses"], color="tab:gray", lw=1,
                    label="smoothed (torch-lr-finder)")
    picked = lr_range.get("pick")
    candidates = lr_range.get("candidates") or {picked or "picked": lr_range["suggested_lr"]}
    for rule, lr in candidates.items():
        used = rule == picked or len(candidates) == 1
        ax.axvline(lr, color=LR_PICK_COLOURS.get(rule, "red"), ls="-" if used else "--", lw=1.5 if used else 1,
                   label=f"{rule} {lr:.2g}" + (" (picked)" if used else ""))


def plot_compare(result: dict[str, Any], path: Path) -> None:
    """Per-arm macro-F1 of each seed (with its bootstrap interval over test clips), the arm mean with its t interval,
    and the paired difference in the title."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    for x, key in ((0, "a"), (1, "b")):
        side = result[key]
        n = len(side["macro_f1"])
        offsets = np.linspace(-0.12, 0.12, n) if n > 1 else np.zeros(1)
        for dx, f1, ci in zip(offsets, side["macro_f1"], side["per_run_bootstrap_ci95"]):
            ax.errorbar(x + dx, f1, yerr=[[f1 - ci[0]], [ci[1] - f1]], fmt="o", color="tab:blue" if key == "a"
                        else "tab:orange", alpha=0.7, capsize=3)
        if side["ci95"]:
            lo, hi = side["ci95"]
            ax.errorbar(x + 0.25, side["mean"], yerr=[[side["mean"] - lo], [hi - side["mean"]]], fmt="s",
                        color="black", capsize=4, label="mean, 95 % t interval" if key == "a" else None)
        else:
            ax.plot(x + 0.25, side["mean"], "s", color="black")
    ax.set_xticks([0, 1], [f"A: {result['a']['arm']}", f"B: {result['b']['arm']}"])
    ax.set_ylabel("test macro-F1 (points: seeds, bars: bootstrap 95 %)")
    ax.set_xlim(-0.5, 1.6)
    lo, hi = result["ci95"]
    ax.set_title(f"B − A = {result['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}], p = {result['p_value']:.3g}", fontsize=10)
    if result["a"]["ci95"] or result["b"]["ci95"]:
        ax.legend(fontsize=8)
    _save(fig, path)
