"""User-facing errors: one clear line, non-zero exit, no traceback."""
from __future__ import annotations

import click


class UserError(click.ClickException):
    """Bad input or state the user can fix. Printed as one line ``error: ...``, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102 - click API
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class Interrupted(UserError):
    """The run was interrupted (SIGINT/SIGTERM) after saving what it could."""

    exit_code = 130
