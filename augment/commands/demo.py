"""`augment demo`: the whole job end to end on a synthesized toy audio set, on CPU.

The demo is an ordered list of steps ``(name, fn(workspace, options))``: augment's own (synthesize, prepare, train,
generate), then those that installed packages above augment register in the entry-point group
``augment.demo_steps`` (each entry a ``(name, fn)`` pair, run in the order of the entry names). `classify` registers
its classifier runs there (pyproject.toml), so augment never imports classify.
"""
from __future__ import annotations

import time
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Callable

import click

from augment.errors import UserError

DEMO_AUDIO = "demo-audio"
STEP_GROUP = "augment.demo_steps"
DEMO_TEST_PER_CLASS = 4

Step = tuple[str, Callable[[Path, dict[str, Any]], None]]


def synthesize_audio(workspace: Path, options: dict[str, Any]) -> None:
    """Write the toy audio set (4 classes × 16 clips × 4 s, 8 kHz) into WORKSPACE/demo-audio."""
    from augment.demo_data import write_demo_audio

    written = write_demo_audio(workspace / DEMO_AUDIO, seed=options["seed"])
    click.echo(f"synthesized {sum(map(len, written.values()))} clips of {len(written)} classes "
               f"in {workspace / DEMO_AUDIO}")


def prepare_demo(workspace: Path, options: dict[str, Any]) -> None:
    """Prepare the toy audio set as a folder dataset at the demo resolution and print the dataset summary."""
    from augment.audio.mel import resolve_mel
    from augment.datasets import build_dataset
    from augment.demo_data import DEMO_SECONDS, DEMO_SR
    from augment.prepare import class_table, prepare_dataset

    spec = build_dataset("folder", {"audio_dir": workspace / DEMO_AUDIO, "name": "demo",
                                    "test_size": str(DEMO_TEST_PER_CLASS)})
    mel = resolve_mel("clean", sr=DEMO_SR, duration=DEMO_SECONDS)
    report = prepare_dataset(spec, workspace=workspace, mel=mel, resolution=options["resolution"],
                             jobs=options["jobs"], force=options["force"])
    click.echo(class_table(report.workspace))
    click.echo(report.summary_line())


DEMO_KIMG = 0.5   # per class: enough to leave the noise stage, small enough for minutes on 2 CPU cores


def train_demo(workspace: Path, options: dict[str, Any]) -> None:
    """Train a tiny GAN per class from scratch through the real `augment train` command."""
    from augment.commands.train import train
    from augment.workspace import Workspace

    ws = Workspace.load(workspace)
    for cls in ws.classes:
        args = ["--workspace", str(workspace), "--class", cls, "--cfg", "tiny", "--kimg", str(DEMO_KIMG),
                "--from", "scratch", "--metrics", "none", "--tick-kimg", str(DEMO_KIMG / 2), "--snap", "1",
                "--seed", str(options["seed"]), "--device", "cpu", "--quiet"]
        if options["force"]:
            args.append("--force")
        train.main(args=args, prog_name="augment train", standalone_mode=False)


def _generate_step(workspace: Path, options: dict[str, Any]) -> None:
    from augment.commands.generate import generate_demo

    generate_demo(workspace, options)


def registered_steps(group: str = STEP_GROUP) -> list[Step]:
    """The steps installed packages add after augment's own, in the order of their entry-point names.

    An entry that cannot be loaded becomes a step that stops the demo with a one-line error when it is reached.
    """
    steps: list[Step] = []
    for entry in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            name, fn = entry.load()
        except Exception as exc:  # a broken or stale install: say so when the step is due, not at import
            steps.append((entry.name, _unloadable(entry, exc)))
        else:
            steps.append((name, fn))
    return steps


def _unloadable(entry: EntryPoint, exc: Exception) -> Callable[[Path, dict[str, Any]], None]:
    def step(workspace: Path, options: dict[str, Any]) -> None:
        raise UserError(f"demo step {entry.name!r} ({entry.value}) cannot be loaded: {type(exc).__name__}: {exc}; "
                        "reinstall the package (pip install -e .)")
    return step


OWN_STEPS: list[Step] = [
    ("synthesize audio", synthesize_audio),
    ("prepare", prepare_demo),
    ("train a tiny GAN per class", train_demo),
    ("generate fakes", _generate_step),
]
STEPS: list[Step] = OWN_STEPS + registered_steps()


@click.command(context_settings={"show_default": True})
@click.option("--workspace", "-w", type=click.Path(file_okay=False), default="demo-workspace",
              help="Folder for the demo workspace (created).")
@click.option("--resolution", type=int, default=32, help="Image size (small, so the tiny GAN trains fast on CPU).")
@click.option("--jobs", "-j", type=int, default=None, help="Worker processes.  [default: all cores]")
@click.option("--seed", type=int, default=0, help="Seed of the synthesized audio.")
@click.option("--force", is_flag=True, help="Replace a different dataset already in --workspace.")
def demo(workspace: str, resolution: int, jobs: int | None, seed: int, force: bool) -> None:
    """Run the pipeline end to end on a synthesized labelled audio set (CPU, minutes)."""
    from augment.commands.prepare import check_resolution
    from augment.io_utils import check_writable_dir
    from augment.prepare_worker import default_jobs

    check_resolution(resolution)
    root = check_writable_dir(Path(workspace).expanduser()).resolve()
    options = {"resolution": resolution, "jobs": jobs or default_jobs(), "seed": seed, "force": force}
    t0 = time.time()
    for i, (name, fn) in enumerate(STEPS, start=1):
        click.echo(f"== demo step {i}/{len(STEPS)}: {name}")
        fn(root, options)
    if len(STEPS) == len(OWN_STEPS):
        click.echo(f"note: no installed package adds a demo step ({STEP_GROUP}); the classifier runs come with "
                   "classify's entry point: reinstall with `make install` (or pip install -e .)")
    click.echo(f"demo finished in {time.time() - t0:.1f} s; workspace: {root}")
