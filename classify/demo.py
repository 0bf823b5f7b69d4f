"""The `augment demo` step for classification: small_cnn on real, synthetic and real+synthetic data (CPU, seconds).

`STEP` is registered in pyproject.toml under the entry-point group ``augment.demo_steps``; `augment demo` runs it
after its own steps (synthesize, prepare, train, generate), so the demo needs no import from augment up into classify.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

DEMO_EPOCHS = 8


def demo_step(workspace: Path, options: dict[str, Any]) -> None:
    """One small_cnn per training source that the workspace has, one seed, at the demo resolution."""
    from augment.workspace import Workspace
    from classify.commands import user_warnings
    from classify.evaluate import EvalOptions, run_eval
    from classify.trainer import TrainConfig

    ws = Workspace.load(workspace)
    per_class = _fakes_per_class(ws)
    sources = ["real"] + (["synthetic", "real+synthetic"] if per_class else [])
    for train in sources:
        opts = EvalOptions(train=train, archs=["small_cnn"], modes=["whole"], seeds=[options.get("seed", 0)],
                           pretrained="none", input_size=ws.resolution, synthetic_per_class=max(2, per_class),
                           train_config=TrainConfig(epochs=DEMO_EPOCHS, lr_range_steps=20), progress=False)
        with user_warnings():
            m = run_eval(ws, opts)[0]
        click.echo(f"classify --train {train}: test macro-F1 {m['test']['macro_f1']:.3f} ({m['run_id']})")


STEP = ("classify: real, synthetic, real+synthetic", demo_step)


def _fakes_per_class(ws: Any) -> int:
    """Fakes available for every class (0 without a synthetic folder), so the demo uses all without a warning."""
    from augment.synthetic import read_manifest

    if not (ws.synthetic_dir / "manifest.csv").is_file():
        return 0
    counts = {c: 0 for c in ws.classes}
    for row in read_manifest(ws.synthetic_dir):
        counts[row.cls] = counts.get(row.cls, 0) + 1
    return min(counts.values())
