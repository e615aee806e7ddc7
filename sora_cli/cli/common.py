"""What every command shares: the context, output to the right stream, and options."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

import click
import typer

from sora_cli.cli.render import job_dict, json_line
from sora_cli.config import Settings, default_home, insecure_base_url, load_settings
from sora_cli.domain.jobs import Job
from sora_cli.domain.text import mask_url, scrub
from sora_cli.errors import InvalidInput, StoreError
from sora_cli.services.context import Context, Hooks


def hooks_for(tctx: click.Context | None) -> Hooks:
    """The hooks of this invocation: a `Hooks` passed as the Click context object
    (`CliRunner().invoke(app, args, obj=Hooks(...))` in tests), else the real ones."""
    cctx = tctx if tctx is not None else click.get_current_context(silent=True)
    found = cctx.find_object(Hooks) if cctx is not None else None
    return found if found is not None else Hooks()


def open_context(tctx: typer.Context | None = None) -> Context:
    warnings: list[str] = []
    try:
        settings = load_settings(warn=warnings)
    except InvalidInput:
        _check_home()  # a data dir that cannot exist is an unusable store (1), not bad input
        raise
    ctx = Context(settings, warnings, hooks=hooks_for(tctx))
    for w in warnings:
        note(w)
    if tctx is not None:
        tctx.call_on_close(ctx.close)
    return ctx


def warn_if_insecure(settings: Settings, providers: Iterable[str] = ()) -> None:
    """For commands that send the API key: say so when it would travel in clear text
    (to the openai base URL, or to a named endpoint of `providers` that has a key)."""
    if insecure_base_url(settings.base_url):
        note(f"warning: {mask_url(settings.base_url)} is plain http to another machine: the "
             "API key and your prompts travel unencrypted (use https://)")
    for name in dict.fromkeys(providers):
        p = settings.provider(name)
        if p is not None and p.is_endpoint and p.api_key and insecure_base_url(p.base_url):
            note(f"warning: {name} ({mask_url(p.base_url)}) is plain http to another machine: "
                 f"its key ({p.key_env}) and your prompts travel unencrypted (use https://)")


def _check_home() -> None:
    home = default_home(os.environ)
    for path in (home, *home.parents):
        if path.exists():
            if not path.is_dir():
                raise StoreError(f"cannot create data dir {home}: {path} is not a directory")
            return


def note(message: str) -> None:
    """A line for the human on stderr (never data), through the one redaction."""
    line = " ".join(scrub(message).splitlines())
    sys.stderr.write(f"sora: {line}\n")
    sys.stderr.flush()


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def print_jobs(jobs: Iterable[Job], *, as_json: bool, quiet: bool) -> bool:
    """Print jobs as JSON Lines or ids; returns False when the caller should render."""
    if as_json:
        for job in jobs:
            out(json_line(job_dict(job)))
        return True
    if quiet:
        for job in jobs:
            out(job.id)
        return True
    return False


JSON_OPT = typer.Option(False, "--json", help="One JSON object per job per line.")
QUIET_OPT = typer.Option(False, "--quiet", "-q", help="Print job ids only.")


def read_stdin(what: str = "stdin") -> str:
    """Standard input as text: UTF-8, or InvalidInput (exit 2) naming the first line
    that is not (Python's own decoding would end in a traceback)."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text-only stream (some test harnesses): already decoded
        return sys.stdin.read()
    return decode_utf8(stream.read(), what)


def decode_utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"{what} line {line} is not UTF-8 text") from None
