"""The command-line edge: the Typer app, one module per command family.

`SoraGroup.main` is the only place that turns exceptions into exit codes and
error lines: a SoraError or a usage error becomes one line on stderr (a
traceback only with -v), Ctrl-C becomes 130.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click
import typer
from typer.core import TyperGroup

from sora_cli import __version__
from sora_cli.domain.text import scrub
from sora_cli.errors import ExitCode, SoraError

_verbose: list[bool] = [False]


def _fail(message: str, code: int) -> None:
    line = " ".join(scrub(message).splitlines()).strip()  # always exactly one line
    sys.stderr.write(f"sora: {line}\n")
    sys.stderr.flush()
    sys.exit(code)


def _traceback() -> None:
    """With -v, the traceback of the exception being handled, through the one redaction
    (an exception may quote a header, the key in it)."""
    if _verbose[0]:
        import traceback

        sys.stderr.write(scrub(traceback.format_exc(), None))


class _Interrupted(Exception):
    """Ctrl-C inside a command (Typer would turn it into a silent exit 130)."""


class SoraGroup(TyperGroup):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _Interrupted from None

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        _verbose[0] = False  # a previous in-process call (tests) must not leak -v
        try:
            rv = super().main(args, prog_name or "sora", complete_var, standalone_mode=False,
                              windows_expand_args=windows_expand_args, **extra)
        except SoraError as exc:
            _traceback()
            _fail(str(exc), exc.exit_code)
        except click.exceptions.NoArgsIsHelpError as exc:  # `sora` or `sora runner` alone: the help
            sys.stderr.write(exc.format_message() + "\n")
            sys.exit(ExitCode.USAGE)
        except click.exceptions.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            _fail(exc.format_message() + hint, ExitCode.USAGE)
        except click.exceptions.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except (KeyboardInterrupt, _Interrupted, typer.Abort):
            _fail("interrupted; jobs keep running in the background", ExitCode.INTERRUPTED)
        except BrokenPipeError:
            sys.stderr.close()
            sys.exit(ExitCode.FAILED)
        except OSError as exc:  # a file sora was asked to read or write: one line, not a trace
            _traceback()
            where = f": {exc.filename}" if exc.filename else ""
            _fail(f"{exc.strerror or exc}{where}", ExitCode.FAILED)
        except Exception as exc:  # a bug: still one redacted line, the trace only with -v
            _traceback()
            _fail(f"internal error: {type(exc).__name__}: {exc}", ExitCode.FAILED)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    name="sora",
    cls=SoraGroup,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sora {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Submit text-to-video jobs to a Videos API (the OpenAI Sora 2 contract), track them
    in a local job store, and save the videos. A detached runner does the slow part.

    \b
    sora submit "a corgi surfing at sunset" --seconds 8 --size 1280x720
    sora list
    sora wait @last --download -o clips/
    """
    _verbose[0] = verbose
