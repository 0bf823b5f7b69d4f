"""The ``augment`` command: prepare data, train GANs, generate fakes, listen."""
from __future__ import annotations

from augment.cli_common import lazy_group, run_cli

COMMANDS = {
    "prepare": "augment.commands.prepare:prepare",
    "listen": "augment.commands.listen:listen",
    "demo": "augment.commands.demo:demo",
    "train": "augment.commands.train:train",
    "generate": "augment.commands.generate:generate",
    "check-novelty": "augment.commands.novelty:check_novelty",
    "pretrained": "augment.commands.pretrained:pretrained",
    "classic": "augment.commands.classic:classic",
    "verify": "augment.commands.verify:verify",
}

cli = lazy_group("augment", COMMANDS, """GAN data augmentation for small-data classification.

    \b
    Typical workflow:
      augment prepare --dataset panda4q --audio-dir ... --annotations ...
      augment train --class anger --resume
      augment generate --n 1000
      classify eval --train synthetic --test real
    """)


def main() -> None:
    run_cli(cli, "augment")


if __name__ == "__main__":
    main()
