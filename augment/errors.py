"""User-facing errors and warnings: one clear line each; errors exit non-zero without a traceback.

Library code never prints: it raises ``UserError``, reports a problem worth knowing with :func:`warn` (a Python
warning, category ``AugmentWarning``) and a note through the ``log`` callback its caller passes. The command lines
(``augment.cli_common.LazyGroup``) show each ``AugmentWarning`` as one ``warning: ...`` line on stderr.
"""
from __future__ import annotations

import warnings

import click


class UserError(click.ClickException):
    """Bad input or state the user can fix. Printed as one line ``error: ...``, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102 - click API
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class Interrupted(UserError):
    """The run was interrupted (SIGINT/SIGTERM) after saving what it could."""

    exit_code = 130


class AugmentWarning(UserWarning):
    """Something the user should know (a skipped file, a memorizing GAN); the CLI shows ``warning: <message>``."""


def warn(message: str) -> None:
    """Report ``message`` as an AugmentWarning (shown once per occurrence by the CLI, never raised)."""
    warnings.warn(message, AugmentWarning, stacklevel=2)


def user_device(name: str | None, *, gpus: int = 1) -> str:
    """``stylegan_ada.devices.resolve_device`` (the one device rule) with its refusal as a one-line UserError."""
    from stylegan_ada.devices import DeviceError, resolve_device

    try:
        return resolve_device(name, gpus=gpus)
    except DeviceError as exc:
        raise UserError(str(exc)) from exc
