"""The ``classify`` command: train and evaluate classifiers on workspace data."""
from __future__ import annotations

from augment.cli_common import lazy_group, run_cli

COMMANDS = {
    "eval": "classify.commands:eval_cmd",
    "baseline": "classify.commands:baseline_cmd",
    "archs": "classify.commands:archs_cmd",
    "compare": "classify.commands:compare_cmd",
    "predict": "classify.commands:predict_cmd",
    "weights": "classify.musicnn.commands:weights_cmd",
}

cli = lazy_group("classify", COMMANDS, "Train CNNs on real and/or synthetic spectrograms and score them on the "
                                       "untouched real test split.")


def main() -> None:
    run_cli(cli, "classify")


if __name__ == "__main__":
    main()
