"""The program group helper shared by `augment` and `classify`: lazy subcommands, -h, --version, defaults shown."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from augment import __version__
from augment.cli_common import lazy_group


def test_lazy_group_imports_a_subcommand_only_when_it_is_used():
    lazy = lazy_group("prog", {"later": "no_such_module_anywhere:cmd"}, "Help of prog.")
    assert CliRunner().invoke(lazy, ["--version"]).output == f"prog, version {__version__}\n"  # nothing imported
    assert lazy.list_commands(click.Context(lazy)) == ["later"]
    with pytest.raises(ModuleNotFoundError):
        lazy.get_command(click.Context(lazy), "later")


def test_lazy_group_help_and_subcommands():
    group = lazy_group("prog", {"pretrained": "augment.commands.pretrained:pretrained"}, "Help of prog.")
    result = CliRunner().invoke(group, ["-h"])
    assert result.exit_code == 0 and "Help of prog." in result.output and "pretrained" in result.output
    result = CliRunner().invoke(group, ["pretrained", "--help"])
    assert result.exit_code == 0 and "Usage: prog pretrained" in result.output
