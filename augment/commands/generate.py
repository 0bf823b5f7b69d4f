"""``augment generate``: fakes for every trained class into WORKSPACE/synthetic."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import click

from augment.cli_common import parse_int_list, workspace_option

if TYPE_CHECKING:  # the command imports the library only when it runs (fast --help)
    from augment.generate import GenerateOptions, GenerateSummary
    from augment.trained_models import ModelChoice
    from augment.workspace import Workspace


def _note(line: str) -> None:
    click.echo(line, err=True)


def _run_generate(ws: Workspace, choices: Sequence[ModelChoice], opts: GenerateOptions, *,
                  progress: bool = True) -> GenerateSummary:
    """The library's generate with its notes on stderr, and the archived folder (--force) said."""
    from augment.generate import generate

    summary = generate(ws, choices, opts, progress=progress, command=list(sys.argv), log=_note)
    if summary.archived is not None:
        _note(f"moved the replaced {summary.out} to {summary.archived}")
    return summary


def split_classes(values: Sequence[str]) -> list[str] | None:
    """``--classes a,b --classes c`` -> ['a', 'b', 'c']; None when not given."""
    out = [c.strip() for v in values for c in v.split(",") if c.strip()]
    return out or None


@click.command()
@workspace_option
@click.option("--n", "n", type=int, default=None, help="Images per class  [default: 1000]")
@click.option("--classes", "--class", "classes", multiple=True,
              help="Only these classes (comma-separated or repeated)  [default: every class with a trained model]")
@click.option("--run", "run", default=None, help="Use this run folder (runs/<class>/NNNNN-...) instead of the newest")
@click.option("--snapshot", "snapshot", default=None, help="Use this network-snapshot-*.safetensors (or .pkl)")
@click.option("--pick", type=click.Choice(["newest", "best"]), default="newest",
              help="Which snapshot of the runs: the newest, or the best FID recorded in stats.jsonl")
@click.option("--cond", "conditional", is_flag=True, help="Use the class-conditional model in runs/_conditional")
@click.option("--seeds", default=None,
              help="Seeds for every class, e.g. 0-999  [default: --n seeds from class_index*100000]")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, help="Truncation psi (1 = none, lower = safer)")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const",
              help="Per-pixel noise inputs of the synthesis network")
@click.option("--batch", type=int, default=32, help="Images per generator call")
@click.option("--device", default=None, help="cpu, cuda or cuda:N  [default: cuda when present, else cpu]")
@click.option("--audio", is_flag=True, help="Also write WAVs (Griffin-Lim) next to the first --audio-n PNGs per class")
@click.option("--audio-n", type=int, default=10, help="How many WAVs per class with --audio")
@click.option("--novelty", is_flag=True, help="Then run the memorization check (same as `augment check-novelty`)")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder  [default: WORKSPACE/synthetic]")
@click.option("--force", is_flag=True, help="Replace an output folder that `augment generate` made for another "
                                            "workspace config (it is moved to WORKSPACE/archive/, never deleted)")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar")
def generate(workspace: str | None, n: int | None, classes: tuple[str, ...], run: str | None, snapshot: str | None,
             pick: str, conditional: bool, seeds: str | None, truncation_psi: float, noise_mode: str, batch: int,
             device: str | None, audio: bool, audio_n: int, novelty: bool, out: str | None, force: bool,
             quiet: bool) -> None:
    """Generate N fakes per class from the trained GANs (G_ema) into WORKSPACE/synthetic.

    Writes synthetic/<class>/seed<NNNNNN>.png (RGB, 3 equal channels, the workspace resolution),
    synthetic/manifest.csv, synthetic/grid-<class>.png and synthetic/generate.json. The same command
    twice gives identical files.
    """
    from augment.generate import GenerateOptions
    from augment.trained_models import choose_models
    from augment.workspace import Workspace

    opts = GenerateOptions(n=n, seeds=parse_int_list(seeds, "--seeds") if seeds is not None else None,
                           truncation_psi=truncation_psi, noise_mode=noise_mode, batch=batch, device=device,
                           audio_n=audio_n if audio else 0, force=force, out=Path(out) if out else None)
    opts.check()
    ws = Workspace.load(workspace)
    ws.require_classes("augment generate")
    choices = choose_models(ws, classes=split_classes(classes), pick=pick, run=run, snapshot=snapshot,
                            conditional=conditional)
    summary = _run_generate(ws, choices, opts, progress=not quiet)
    untrained = [c for c in ws.classes if c not in summary.classes] if not classes and not (run or snapshot) else []
    if untrained:
        from augment.trained_models import train_command

        click.echo(f"note: no trained model for class(es) {', '.join(untrained)}; skipped (train with "
                   f"`{train_command(ws, untrained[0])}`)", err=True)
    click.echo(summary.line())
    if novelty:
        from augment.novelty import NoveltyOptions, check_novelty

        report = check_novelty(ws, summary.out, NoveltyOptions(device=opts.device, classes=summary.classes),
                               progress=not quiet)
        click.echo(report.line())


DEMO_FAKES_PER_CLASS = 100


def generate_demo(workspace: Path, options: dict[str, Any]) -> None:
    """`augment demo` step: fakes for every class from the tiny GANs just trained, then the memorization check."""
    from augment.generate import GenerateOptions
    from augment.novelty import NoveltyOptions, check_novelty
    from augment.trained_models import choose_models
    from augment.workspace import Workspace

    ws = Workspace.load(workspace)
    opts = GenerateOptions(n=DEMO_FAKES_PER_CLASS, force=bool(options.get("force")))
    opts.check()
    summary = _run_generate(ws, choose_models(ws, classes=ws.classes), opts)
    click.echo(summary.line())
    # the feature distance runs an ImageNet CNN on every image: seconds on a GPU, minutes on a CPU
    features = "auto" if str(opts.device).startswith("cuda") else "none"
    if features == "none":
        click.echo("novelty check with the pixel distance only (no GPU); `augment check-novelty` adds the feature one")
    click.echo(check_novelty(ws, summary.out, NoveltyOptions(device=opts.device, features=features)).line())
