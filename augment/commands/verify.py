"""``augment verify``: are the snapshot files of a run intact, and which could a resume start from?"""
from __future__ import annotations

import sys
from fnmatch import fnmatch
from pathlib import Path

import click


@click.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="No progress bar")
def verify(target: Path, quiet: bool) -> None:
    """Check every network snapshot and training state of TARGET without loading a network.

    TARGET is a run folder (runs/<class>/<NNNNN>-<desc>), a folder of runs or a workspace (every run below it), or
    one snapshot file. Network snapshots: framing, header and payload checksums, metadata fields. Training states:
    checksum, fields, and the sha256 link to the network snapshot of their tag. One line per file, then a summary;
    exit 2 with one `error:` line when any file is damaged.
    """
    from tqdm import tqdm

    from stylegan_ada.training.verify import NETWORK_GLOB, STATE_GLOB, check_file, run_dirs_under, snapshot_files

    from augment.errors import UserError

    if target.is_file():
        if not any(fnmatch(target.name, glob) for glob in (NETWORK_GLOB, STATE_GLOB)):
            raise UserError(f"{target.name} is not one of our snapshot files ({NETWORK_GLOB}, {STATE_GLOB}); "
                            "augment verify checks those (a reference .pkl has no checksums to check)")
        runs, files = [target.parent], [target]
    else:
        runs = run_dirs_under(target)
        files = [p for run in runs for p in snapshot_files(run)]
        if not files:
            raise UserError(f"{target} holds no network-snapshot-*.safetensors or training-state-*.pt (looked "
                            "down to WORKSPACE/runs/<class>/<run>/); pass a run folder, a workspace or a snapshot")
    bad = []
    bar = tqdm(files, desc="verify", unit="file", file=sys.stderr, disable=quiet or None, leave=False)
    for path in bar:
        check = check_file(path)
        shown = _shown(path, target)
        tqdm.write(f"{'ok' if check.ok else 'DAMAGED':<8} {shown}: {check.detail}", file=sys.stdout)
        if not check.ok:
            bad.append(f"{shown} ({check.detail})")
    bar.close()
    click.echo(f"verified {len(files)} file(s) in {len(runs)} run(s): {len(files) - len(bad)} ok, "
               f"{len(bad)} damaged")
    if bad:
        more = f" (and {len(bad) - 1} more, listed above)" if len(bad) > 1 else ""
        raise UserError(f"damaged snapshot file {bad[0]}{more}; `augment train --resume` falls back to the newest "
                        "pair that verifies -- restore the file from a backup or delete it")


def _shown(path: Path, target: Path) -> str:
    """``path`` relative to the folder the user named (the file name when one file was named)."""
    base = target.parent if target.is_file() else target
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
