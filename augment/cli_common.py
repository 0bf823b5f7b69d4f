"""Pieces shared by the `augment` and `classify` command lines."""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
import warnings
from typing import Any, Callable, Iterator

import click

from augment.errors import AugmentWarning, UserError

WORKSPACE_HELP = "Workspace directory holding augment.json [default: $AUGMENT_WORKSPACE or the current directory]"


def workspace_option(f: Callable) -> Callable:
    """``--workspace DIR`` (env AUGMENT_WORKSPACE, default the current directory)."""
    return click.option("--workspace", "-w", "workspace", type=click.Path(file_okay=False), default=None,
                        help=WORKSPACE_HELP)(f)


@contextlib.contextmanager
def shown_warnings() -> Iterator[None]:
    """Every ``AugmentWarning`` raised inside as one ``warning: <message>`` line on stderr, each time it is raised;
    other warnings as Python shows them."""
    previous = warnings.showwarning

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if issubclass(category, AugmentWarning):
            click.echo(f"warning: {message}", err=True)
        else:
            previous(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", AugmentWarning)
        warnings.showwarning = show
        yield


class LazyGroup(click.Group):
    """A click group whose subcommands live in their own modules and are imported only when used.

    Keeps ``--help`` fast (no torch import) and lets each command own one module.
    ``lazy`` maps command name -> "module.path:attribute".
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module_name, attr = self.lazy[name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        with shown_warnings():  # the library reports through warnings; here they become our one-line format
            return super().invoke(ctx)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from each command's docstring; import them (cheap: modules import heavy libs lazily).
        super().format_commands(ctx, formatter)


def lazy_group(prog_name: str, commands: dict[str, str], help_text: str) -> click.Group:
    """The top-level click group of a program: subcommands imported lazily from ``commands`` (name ->
    "module:attribute"), ``-h``/``--help``, ``--version``, defaults shown in every command's help."""
    from augment import __version__

    def group() -> None:
        pass

    group.__doc__ = help_text
    group = click.version_option(__version__, prog_name=prog_name)(group)
    return click.group(name=prog_name, cls=LazyGroup, lazy=commands,
                       context_settings={"help_option_names": ["-h", "--help"], "show_default": True})(group)


def run_cli(group: click.Group, prog_name: str) -> None:
    """Run a click group so that failures are one line and a non-zero exit, never a traceback.

    Set AUGMENT_DEBUG=1 to see the traceback of an unexpected error.
    """
    debug = os.environ.get("AUGMENT_DEBUG", "") not in ("", "0")
    try:
        group.main(prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # includes UserError and usage errors
        if isinstance(exc, UserError):
            exc.show()
        else:
            # click usage errors: the message and where to look, on one 'error:' line
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            message = " ".join(exc.format_message().split())
            click.echo(f"error: {message}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except MemoryError:
        click.echo("error: out of memory; use a smaller --batch or resolution", err=True)
        sys.exit(1)
    except OSError as exc:
        if debug:
            raise
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        click.echo(f"error: {exc.strerror or exc}{where}", err=True)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - last line of defence; set AUGMENT_DEBUG=1 for details
        if debug:
            raise
        click.echo(f"error: unexpected {type(exc).__name__}: {exc} (set AUGMENT_DEBUG=1 for the traceback, "
                   "and please report it)", err=True)
        sys.exit(1)
    sys.exit(0)


def parse_int_list(text: str, name: str) -> list[int]:
    """'0,1,2' or '0-4' -> [0, 1, 2]; UserError naming the option otherwise."""
    out: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                raise ValueError
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, "")
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise UserError(f"{name} must be comma-separated integers or ranges like 0,1,2 or 0-9, got {text!r}") from None
    return out
