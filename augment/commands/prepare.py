"""`augment prepare`: turn labelled audio (or images) into a split, hashed workspace of mel-spectrogram images."""
from __future__ import annotations

from typing import Any, Callable

import click

from augment.audio.mel import DEFAULT_PRESET, PRESETS, MelConfig
from augment.cli_common import workspace_option
from augment.datasets import dataset_kind, dataset_kinds
from augment.datasets.kind import DatasetOption, merged_options, options_not_applying
from augment.errors import UserError

# every choice and dataset-specific option comes from the kinds' declarations (augment/datasets/)
KINDS = dataset_kinds()
DATASET_OPTIONS = merged_options(KINDS)
MEL_OPTIONS = ("sr", "duration", "offset", "n_mels", "fmax", "n_fft", "hop", "top_db")
_D = MelConfig()


def _click_option(opt: DatasetOption) -> Callable:
    """A dataset-specific option, None when not given; paths are checked by the builder, which names what is
    missing, and giving the option to another --dataset is refused in ``prepare``."""
    kinds = {"dir": click.Path(file_okay=False, dir_okay=True), "file": click.Path(file_okay=True, dir_okay=False),
             "choice": click.Choice(opt.choices), "text": None}
    return click.option(opt.flag, type=kinds[opt.type], default=None, help=opt.help)


def dataset_options(command: Callable) -> Callable:
    """``--dataset`` and every option a kind declares, in registry order."""
    for opt in reversed(DATASET_OPTIONS):
        command = _click_option(opt)(command)
    kinds = ", ".join(f"{k.name} ({k.summary})" for k in KINDS)
    return click.option("--dataset", type=click.Choice([k.name for k in KINDS]), required=True,
                        help=f"Kind of input: {kinds}.")(command)


def check_resolution(resolution: int) -> None:
    """4..8192 px. Not a power of two (e.g. 48 px faces): fine for `classify`; `augment train` trains its GAN at the
    next power of two (the images resized as they load), said here in one note."""
    from augment.workspace_schema import MAX_RESOLUTION

    if not 4 <= resolution <= MAX_RESOLUTION:
        raise UserError(f"--resolution must be from 4 to {MAX_RESOLUTION} px (a power of two such as 64 or 256 for "
                        f"GAN training), got {resolution}")
    if resolution & (resolution - 1):
        click.echo(f"note: {resolution} px is not a power of two: `classify` uses the images at {resolution} px; "
                   f"`augment train` trains at {1 << (resolution - 1).bit_length()} px (images resized as they load)",
                   err=True)


@click.command(context_settings={"show_default": True})
@dataset_options
@click.option("--name", default=None, help="Dataset name recorded in the workspace.  [default: the --dataset kind]")
@click.option("--test-size", default=None,
              help="Test clips per class: a count (40) or a fraction (0.2).  [default: "
                   + "; ".join(f"{k.name} {k.test_size}" for k in KINDS) + "]")
@click.option("--val-size", type=float, default=0.2, help="Fraction of each class's training pool held out for "
                                                          "validation (train_test_split, random_state 42).")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET,
              help="Mel settings: clean (fmax = sr/2) or thesis (fmax 8000 as in the thesis: 27 empty mel bands).")
@click.option("--sr", type=int, default=None, help=f"Sample rate in Hz (mono).  [preset: {_D.sr}]")
@click.option("--duration", type=float, default=None,
              help=f"Seconds per clip; shorter clips are zero-padded.  [preset: {_D.duration:g}]")
@click.option("--offset", type=float, default=None, help=f"Seconds skipped at the start.  [preset: {_D.offset:g}]")
@click.option("--n-mels", type=int, default=None, help=f"Mel bands (image height before resizing).  "
                                                       f"[preset: {_D.n_mels}]")
@click.option("--fmax", type=float, default=None, help="Highest mel frequency in Hz.  [clean: sr/2; thesis: 8000]")
@click.option("--n-fft", type=int, default=None, help=f"STFT window size.  [preset: {_D.n_fft}]")
@click.option("--hop", type=int, default=None, help=f"STFT hop length.  [preset: {_D.hop}]")
@click.option("--top-db", type=float, default=None,
              help=f"dB range kept below the clip's peak; mapped to pixels 0..255.  [preset: {_D.top_db:g}]")
@click.option("--resolution", type=int, default=256,
              help="Square image size in pixels: a power of two for GAN training; any other size (e.g. 48) keeps a "
                   "classifier workspace at that size, its GANs train at the next power of two.")
@click.option("--segments", type=int, default=None,
              help="Images per clip: N windows of --duration seconds, evenly spaced over the clip when it is long "
                   "enough, else consecutive (see README, 'Several segments per clip').  [default: 1]")
@click.option("--hop-seconds", type=float, default=None,
              help="Cut a window every S seconds (as many as fit; with --segments N at most N).")
@click.option("--continuous", is_flag=True,
              help="Regression: soundtracks360 keeps the mean rating of the --target dimension, csv reads its label "
                   "column as a number; splits are stratified by 5 quantile bins of it (the bins are the "
                   "workspace's classes). Per-class GANs need classes: not for a continuous workspace.")
@click.option("--group-by", default=None,
              help="Keep every clip of a group (song, recording, artist) in one split: a manifest column for "
                   "--dataset csv, else a regular expression on the file name (first capture group, e.g. "
                   "'^(.+?)_'). The leak guard then refuses training inputs from a test group.")
@click.option("--jobs", "-j", type=int, default=None, help="Worker processes.  [default: all cores]")
@click.option("--force", is_flag=True, help="Replace a different dataset already in the workspace (it and its "
                                            "runs, synthetic and results folders are moved to archive/).")
@workspace_option
def prepare(**kw: Any) -> None:
    """Prepare a dataset: decode, mel spectrogram, RGB PNG, fixed seeded splits, hashed manifest.

    Writes WORKSPACE/augment.json, splits.csv and data/{train,val,test}/<class>/*.png. Splits follow
    protocols.md: per class, test drawn with seed 0, then train/val 80/20 (random_state 42).

    \b
    Warnings (the file is named, skipped and counted in the summary):
      zero-byte, corrupt or non-audio files; audio listed but missing;
      duplicate files (same bytes as another source) or identical images
      (e.g. two silent clips); near-duplicates in two splits (same clip with
      another gain, a little noise or a shift: the test copy is kept).
    Handled silently and recorded: stereo (averaged to mono), any sample rate
      (resampled), clips shorter than --duration (zero-padded, counted).
    Errors (exit 2, nothing written): an empty class folder, a class with too few
      clips for --test-size, a ratings/annotations/manifest file missing
      columns, a non-writable workspace, a workspace holding a different
      dataset (unless --force).
    """
    from augment.audio.mel import resolve_mel
    from augment.prepare import class_table, prepare_dataset
    from augment.prepare_worker import default_jobs
    from augment.segments import segmenting_from_options

    kind = dataset_kind(kw["dataset"])
    wrong = options_not_applying(kind, [o.dest for o in DATASET_OPTIONS if kw.get(o.dest) is not None])
    if wrong:
        raise UserError(f"{', '.join(wrong)} do(es) not apply to --dataset {kind.name}; see `augment prepare --help`")
    check_resolution(kw["resolution"])
    mel_overrides = {k: kw[k] for k in MEL_OPTIONS if kw[k] is not None}
    spec = kind.build(kind.parse_options(kw))
    if spec.kind == "images":  # --dataset images, or a csv manifest that lists images
        if mel_overrides or kw["preset"] != DEFAULT_PRESET or \
                kw["segments"] is not None or kw["hop_seconds"] is not None:
            raise UserError("mel options (--preset, --sr, --duration, --segments, ...) apply to audio datasets only")
        mel = None
    else:
        mel = resolve_mel(kw["preset"], **mel_overrides)
    jobs = kw["jobs"] if kw["jobs"] is not None else default_jobs()
    if jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")
    if kw["continuous"] and spec.target is None:
        raise UserError(f"--continuous does not apply to --dataset {kind.name}; it applies to soundtracks360 (a "
                        "dimension --target) and csv (a numeric label column)")
    report = prepare_dataset(spec, workspace=kw["workspace"], mel=mel, resolution=kw["resolution"], jobs=jobs,
                             force=kw["force"], group_by=kw["group_by"],
                             segmenting=segmenting_from_options(kw["segments"], kw["hop_seconds"]))
    if report.archived is not None:
        click.echo(f"moved the previous dataset (augment.json, splits.csv, data/) and its runs/synthetic/results to "
                   f"{report.archived}")
    click.echo(class_table(report.workspace))
    click.echo(report.summary_line())
