"""`classify weights fetch musicnn [--from FILE]`: get the pretrained MusiCNN/VGG weights (the musicnn wheel)."""
from __future__ import annotations

import click

from augment.errors import UserError

WEIGHT_SETS = ("musicnn",)


@click.group("weights")
def weights_cmd() -> None:
    """Fetch pretrained weights that `classify` does not ship (the musicnn 0.1.0 wheel, ISC licence)."""


@weights_cmd.command("fetch")
@click.argument("name")
@click.option("--from", "from_file", type=click.Path(dir_okay=False), default=None,
              help="Use this copy of musicnn-0.1.0-py3-none-any.whl instead of downloading it.")
def fetch_cmd(name: str, from_file: str | None) -> None:
    """Put NAME's weights into the cache ($AUGMENT_CACHE, default ~/.cache/augment/pretrained), verified by sha256."""
    from classify.weights import fetch_musicnn

    if name not in WEIGHT_SETS:
        raise UserError(f"unknown weights {name!r}; choose one of {', '.join(WEIGHT_SETS)}")
    path, how = fetch_musicnn(from_file)
    click.echo(f"musicnn: {path} ({path.stat().st_size / 1e6:.1f} MB, sha256 verified; {how})")
