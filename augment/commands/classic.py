"""``augment classic``: classic audio-augmented copies of each class's train+val audio into WORKSPACE/augmented."""
from __future__ import annotations

import os

import click

from augment.cli_common import workspace_option


@click.command()
@workspace_option
@click.option("--n", "n", type=click.IntRange(min=1), default=1000, show_default=True, help="Copies per class")
@click.option("--chain", default="pitch_shift,time_stretch,gain,noise", show_default=True,
              help="Transforms in the order applied: pitch_shift (±2 semitones), time_stretch (rate 0.9–1.1, "
                   "length kept), gain (±6 dB), noise (Gaussian, amplitude 0.001–0.015)")
@click.option("--p", "p", default=None,
              help="Probability of each transform: one value for all (0.5) or name=p pairs (gain=0.3,noise=1)  "
                   "[default: 0.5 each]")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Base seed; copy k of class c gets its own seed derived from (seed, c, k)")
@click.option("--audio-dir", type=click.Path(file_okay=False), default=None,
              help="Folder of the source audio [default: the one recorded by `augment prepare`]")
@click.option("--jobs", type=click.IntRange(min=0), default=0,
              help="Worker processes (0: one per CPU core); the output does not depend on it")
@click.option("--force", is_flag=True, help="Replace an earlier `augment classic` output (nothing else)")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar")
def classic(workspace: str | None, n: int, chain: str, p: str | None, seed: int, audio_dir: str | None,
            jobs: int, force: bool, quiet: bool) -> None:
    """Render N audio-augmented copies per class (audiomentations) through the workspace's mel mapping.

    Sources are the class's train+val clips only (round-robin), never test. Writes augmented/<class>/aug*.png,
    augmented/manifest.csv (file, class, source clip, transforms with parameters, seed, sha256) and
    augmented/classic.json (provenance). Same options, same bytes.
    """
    from augment.classic import ClassicOptions, parse_probabilities, run_classic
    from augment.workspace import Workspace

    names = [c.strip() for c in chain.split(",") if c.strip()]
    opts = ClassicOptions(n=n, chain=names, p=parse_probabilities(p, names), seed=seed, audio_dir=audio_dir,
                          force=force, jobs=jobs or (os.cpu_count() or 1))
    opts.check()
    ws = Workspace.load(workspace)
    ws.require_classes("augment classic")
    click.echo(run_classic(ws, opts, progress=not quiet).line())
