"""The ``classify`` command: train and evaluate classifiers on workspace data."""
from __future__ import annotations

import click

from augment import __version__
from augment.cli_common import LazyGroup, run_cli

COMMANDS = {
    "eval": "classify.commands:eval_cmd",
    "baseline": "classify.commands:baseline_cmd",
    "archs": "classify.commands:archs_cmd",
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"],
                                                             "show_default": True})
@click.version_option(__version__, prog_name="classify")
def cli() -> None:
    """Train CNNs on real and/or synthetic spectrograms and score them on the untouched real test split."""


def main() -> None:
    run_cli(cli, "classify")


if __name__ == "__main__":
    main()
