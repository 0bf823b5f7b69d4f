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


def user_device(name: str | None, *, gpus: int = 1) -> str:
    """``stylegan_ada.devices.resolve_device`` (the one device rule) with its refusal as a one-line UserError."""
    from stylegan_ada.devices import DeviceError, resolve_device

    try:
        return resolve_device(name, gpus=gpus)
    except DeviceError as exc:
        raise UserError(str(exc)) from exc
