"""`augment pretrained list|fetch NAME|path NAME`: the reference's pretrained networks (transfer-learning sources)."""
from __future__ import annotations

import click

from augment.errors import UserError


def _registry():
    from stylegan_ada import pretrained as registry

    return registry


def _user_error(exc: Exception) -> UserError:
    return UserError(str(exc))


@click.group("pretrained")
def pretrained() -> None:
    """List, download and locate pretrained StyleGAN2-ADA networks (e.g. ffhq256 for transfer learning).

    \b
    Files live in $AUGMENT_CACHE (default ~/.cache/augment/pretrained) or the repository's pretrained/ folder.
    """


@pretrained.command("list")
def list_cmd() -> None:
    """Show every known network, its resolution, config and whether it is on disk."""
    reg = _registry()
    rows = []
    for name, entry in sorted(reg.REGISTRY.items()):
        found = reg.local_path(entry)
        rows.append((name, f"{entry.resolution}px", entry.config, str(found) if found else "not downloaded",
                     entry.description))
    width = max(len(r[0]) for r in rows)
    for name, res, config, where, desc in rows:
        click.echo(f"{name:<{width}}  {res:>6}  {config:<9}  {where}")
        click.echo(f"{'':<{width}}  {desc}")
    on_disk = sum(1 for r in rows if r[3] != "not downloaded")
    click.echo(f"{len(rows)} networks, {on_disk} on disk; cache: {reg.cache_dir()}")


@pretrained.command("fetch")
@click.argument("name")
@click.option("--force", is_flag=True, help="Download again even if the file is already on disk")
def fetch_cmd(name: str, force: bool) -> None:
    """Download NAME into the cache (with progress), verify it, and print its path."""
    reg = _registry()
    try:
        entry = reg.get_entry(name)
        path = reg.fetch(entry, force=force)
    except reg.PretrainedError as exc:
        raise _user_error(exc) from None
    size_mb = path.stat().st_size / 1e6
    click.echo(f"{name}: {path} ({size_mb:.1f} MB, verified by {reg.verification_method(entry)})")


@pretrained.command("path")
@click.argument("name")
def path_cmd(name: str) -> None:
    """Print where NAME is on disk (never downloads)."""
    reg = _registry()
    try:
        click.echo(str(reg.resolve(name)))
    except reg.PretrainedError as exc:
        raise _user_error(exc) from None
