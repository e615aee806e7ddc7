"""What every command shares: the context, output to the right stream, and options."""

from __future__ import annotations

import sys
from collections.abc import Iterable

import typer

from ..config import load_settings
from ..jobs import Job
from ..render import job_dict, json_line
from ..services import Context


def open_context(tctx: typer.Context | None = None) -> Context:
    warnings: list[str] = []
    ctx = Context(load_settings(warn=warnings), warnings)
    for w in warnings:
        note(w)
    if tctx is not None:
        tctx.call_on_close(ctx.close)
    return ctx


def note(message: str) -> None:
    """A line for the human on stderr (never data)."""
    sys.stderr.write(f"sora: {message}\n")
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
