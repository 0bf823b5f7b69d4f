"""`augment listen`: mel-spectrogram images (real or generated) → WAV, with the workspace's exact mapping."""
from __future__ import annotations

import time
from pathlib import Path

import click

from augment.audio.inverse import DEFAULT_GRIFFIN_LIM_ITERS
from augment.cli_common import workspace_option
from augment.errors import UserError
from augment.workspace import CONFIG_NAME, ENV_VAR, Workspace


def find_workspace(images: list[Path], workspace: str | None) -> Workspace:
    """--workspace / $AUGMENT_WORKSPACE if given, else the workspace the first image lives in, else the cwd."""
    import os

    if workspace is None and not os.environ.get(ENV_VAR):
        for parent in images[0].resolve().parents:
            if (parent / CONFIG_NAME).is_file():
                return Workspace.load(parent)
    return Workspace.load(workspace)


def wav_names(images: list[Path]) -> list[str]:
    """<stem>.wav, or <parent>-<stem>.wav where two inputs share a stem (e.g. seed000001.png of two classes)."""
    stems = [p.stem for p in images]
    return [f"{p.parent.name}-{p.stem}.wav" if stems.count(p.stem) > 1 else f"{p.stem}.wav" for p in images]


LISTEN_RECORD = "listen.json"     # which WAVs of the folder `augment listen` wrote (only those are overwritten)
LISTEN_FORMAT = "augment-listen-v1"


def own_wavs(folder: Path, names: list[str]) -> dict[str, str]:
    """The WAVs ``augment listen`` wrote into ``folder`` (name -> sha256); refuses to overwrite any other file."""
    from augment.io_utils import read_json, sha256_file

    try:
        rec = read_json(folder / LISTEN_RECORD, max_bytes=16 << 20)
        files = rec["files"] if isinstance(rec, dict) and rec.get("format") == LISTEN_FORMAT else {}
    except (OSError, ValueError, KeyError):
        files = {}
    files = {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    for name in names:
        target = folder / name
        if target.exists() and (not target.is_file() or files.get(name) != sha256_file(target)):
            raise UserError(f"{target} exists and was not written by `augment listen`; it is never overwritten: "
                            "choose another --out, or move that file away")
    return files


@click.command(context_settings={"show_default": True})
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "-o", type=click.Path(file_okay=False), default="listen",
              help="Folder for the WAV files (one per image).")
@click.option("--n-iter", type=click.IntRange(1, 1000), default=DEFAULT_GRIFFIN_LIM_ITERS,
              help="Griffin-Lim iterations (more: cleaner phase, slower).")
@click.option("--inversion", type=click.Choice(["interp", "nnls"]), default="interp",
              help="Mel → STFT magnitude: filter-weighted interpolation (keeps quiet parts at their level) or "
                   "librosa's non-negative least squares.")
@workspace_option
def listen(images: tuple[str, ...], out: str, n_iter: int, inversion: str, workspace: str | None) -> None:
    """Turn mel-spectrogram IMAGES back into audio: pixels → dB → mel power → STFT magnitude → Griffin-Lim.

    Works on prepared images and on generated ones (any size; colour channels are averaged). The mapping and mel
    settings come from the workspace's augment.json (the workspace containing the first image, unless --workspace
    or $AUGMENT_WORKSPACE is given). The level is peak-normalised: spectrograms were stored relative to their peak.
    """
    from PIL import UnidentifiedImageError
    from tqdm import tqdm

    from augment.audio.inverse import image_to_wav
    from augment.io_utils import atomic_write_json, check_writable_dir, sha256_file
    from augment.output_guard import check_location, source_dirs
    from augment.workspace_schema import require_audio_settings

    paths = [Path(p) for p in images]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"image(s) not found: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    ws = find_workspace(paths, workspace)
    require_audio_settings(ws.config, ws.root / CONFIG_NAME)
    out_dir = check_writable_dir(check_location(out, root=ws.root, sources=source_dirs(ws.config), option="--out"))
    names = wav_names(paths)
    written = own_wavs(out_dir, names)
    t0 = time.time()
    seconds = 0.0
    for path, name in tqdm(list(zip(paths, names)), desc="listen", unit="image", leave=False):
        try:
            seconds = image_to_wav(path, out_dir / name, mel=ws.config["mel"], mapping=ws.config["image"]["mapping"],
                                   n_iter=n_iter, inversion=inversion)
        except (UnidentifiedImageError, ValueError) as exc:
            raise UserError(f"cannot turn {path} into audio: {exc}") from exc
        written[name] = sha256_file(out_dir / name)
        atomic_write_json(out_dir / LISTEN_RECORD, {"format": LISTEN_FORMAT, "files": written})
    click.echo(f"wrote {len(paths)} WAV file(s) ({seconds:.1f} s each, {ws.config['mel']['sr']} Hz) to {out_dir} "
               f"in {time.time() - t0:.1f} s")
