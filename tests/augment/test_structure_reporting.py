"""Only the command lines print: library code reports through warnings (AugmentWarning) and log callbacks."""
from __future__ import annotations

import ast
import warnings
from pathlib import Path

import click
import pytest

from augment.cli_common import lazy_group, shown_warnings
from augment.errors import AugmentWarning, warn

ROOT = Path(__file__).resolve().parents[2]
# the modules whose job is the terminal: click commands, the CLI plumbing, UserError.show (click's API)
CLI_MODULES = {"augment/cli.py", "augment/cli_common.py", "augment/errors.py"}
# library modules that still print, each with why it may (empty is the goal)
ALLOWED = {
    "stylegan_ada/training/launch.py": "RunLog is the status-line sink of a training process (its stdout is the "
                                       "launcher's and the queue's channel)",
    "stylegan_ada/ops/cuda_backend.py": "the one 'compiling CUDA ops (1-3 min)' notice, deep inside an op call",
}


def _printing_calls(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Name) and f.id == "print") or (
                    isinstance(f, ast.Attribute) and f.attr in ("echo", "secho")
                    and isinstance(f.value, ast.Name) and f.value.id == "click"):
                lines.append(node.lineno)
    return lines


def test_library_modules_do_not_print():
    found = {}
    for pkg in ("augment", "stylegan_ada"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("augment/commands/") or rel in CLI_MODULES or rel in ALLOWED:
                continue
            if calls := _printing_calls(path):
                found[rel] = calls
    assert found == {}, f"library code prints (report through augment.errors.warn or a log callback): {found}"
    assert all(_printing_calls(ROOT / rel) for rel in ALLOWED), "an ALLOWED module no longer prints: drop it"


def test_the_checker_sees_both_kinds_of_print(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import click\nprint('x')\nclick.echo('y', err=True)\nlog('z')\n")
    assert _printing_calls(probe) == [2, 3]


def test_warn_is_a_python_warning_outside_a_cli(capsys):
    with pytest.warns(AugmentWarning, match="^a/zero.wav: empty file$"):
        warn("a/zero.wav: empty file")
    assert capsys.readouterr() == ("", "")


def test_cli_shows_each_augment_warning_as_one_line_every_time():
    from click.testing import CliRunner

    @click.command()
    def noisy() -> None:
        for _ in range(2):
            warn("class a: 3 of 3 fakes are near-copies")
        click.echo("done")

    group = lazy_group("prog", {}, "test")
    group.add_command(noisy)
    result = CliRunner().invoke(group, ["noisy"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == ["warning: class a: 3 of 3 fakes are near-copies"] * 2
    assert result.stdout == "done\n"


def test_other_warnings_keep_python_s_own_display():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with shown_warnings():
            warnings.warn("third-party", DeprecationWarning)
    assert [(w.category, str(w.message)) for w in caught] == [(DeprecationWarning, "third-party")]
