"""``augment check-novelty``: are the fakes new images, or copies of the training images?"""
from __future__ import annotations

import sys

import click

from augment.cli_common import workspace_option
from augment.commands.generate import split_classes


@click.command()
@workspace_option
@click.option("--classes", "--class", "classes", multiple=True,
              help="Only these classes (comma-separated or repeated)  [default: every class in the manifest]")
@click.option("--threshold", type=float, default=0.5,
              help="Near-copy when the distance to the nearest real is below this fraction of the median "
                   "real-to-real nearest-neighbour distance")
@click.option("--k", "k", type=int, default=8, help="How many closest fake/real pairs to show per class")
@click.option("--features", default="auto",
              help="Feature extractor for the feature distance (see stylegan_ada.metrics), or 'none'")
@click.option("--device", default=None, help="cpu, cuda or cuda:N  [default: cuda when present, else cpu]")
@click.option("--batch", type=int, default=64, help="Images per feature-extractor call")
@click.option("--synthetic", "synthetic", type=click.Path(file_okay=False), default=None,
              help="Folder of fakes with manifest.csv  [default: WORKSPACE/synthetic]")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar")
def check_novelty(workspace: str | None, classes: tuple[str, ...], threshold: float, k: int, features: str,
                  device: str | None, batch: int, synthetic: str | None, quiet: bool) -> None:
    """Memorization check: distance from every fake to its nearest real train/val image.

    Writes SYNTHETIC/_novelty/: novelty.json (distributions, thresholds), novelty.csv (one row per
    fake), novelty-hist.png and closest-<class>.png (the k closest fake|real pairs). Warns when fakes
    are near-copies of training images. The test split is never read.
    """
    from augment.novelty import NoveltyOptions, check_novelty as run_check
    from augment.workspace import Workspace

    opts = NoveltyOptions(classes=split_classes(classes), threshold=threshold, k=k, features=features,
                          device=device, batch=batch)
    opts.check()
    ws = Workspace.load(workspace)
    report = run_check(ws, synthetic or ws.synthetic_dir, opts, progress=not quiet, command=list(sys.argv))
    click.echo(report.line())
