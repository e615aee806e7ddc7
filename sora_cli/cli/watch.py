"""`sora watch`: follow the active jobs until none is left.

On a terminal, a live table (Rich, imported only then); otherwise one plain line
per change, for logs and pipes. Exit 0 when no job is left active, 5 when
--timeout runs out first, 130 on Ctrl-C (the jobs keep running).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import JSON_OPT, QUIET_OPT, note, open_context, out
from sora_cli.cli.render import failure_line, job_dict, json_line, use_colour
from sora_cli.domain.jobs import Job
from sora_cli.domain.text import clean
from sora_cli.errors import ExitCode, InvalidInput
from sora_cli.services.context import Context
from sora_cli.services.waiting import watch_active


@app.command("watch")
def watch_cmd(
    tctx: typer.Context,
    label: str = typer.Option(None, "--label", metavar="TEXT", help="Only jobs with this "
                              "label."),
    timeout: float = typer.Option(None, "--timeout", metavar="S", help="Stop after S "
                                  "seconds (exit 5 if jobs are still active)."),
    as_json: bool = JSON_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Follow the active jobs until none is left: a live table on a terminal, one line
    per change (id, status, progress) otherwise.

    \b
    sora watch
    sora watch --label batch-7
    sora watch --json | jq -r 'select(.status == "failed") | .id'
    """
    if timeout is not None and timeout < 0:
        raise InvalidInput("--timeout must be 0 or more seconds")
    ctx = open_context(tctx)
    live = not (as_json or quiet) and _terminal()
    view: _Lines | _LiveTable = _LiveTable() if live else _Lines(as_json=as_json, quiet=quiet)
    raise typer.Exit(follow(ctx, view, label=label, timeout=timeout))


def _terminal() -> bool:
    """A live table needs a real terminal (not a pipe, not TERM=dumb)."""
    try:
        return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def follow(ctx: Context, view: _Lines | _LiveTable, *, label: str | None,
           timeout: float | None) -> int:
    active: list[Job] = []
    seen_any = False
    try:
        for changed, active in watch_active(ctx, label=label, timeout=timeout):
            seen_any = seen_any or bool(changed)
            view.show(changed, active)
    finally:
        view.close()
    if active:
        note(f"timed out with {len(active)} job(s) still active "
             "(they keep running in the background)")
        return ExitCode.TIMEOUT
    if not seen_any:
        note("no active jobs" + (f" with label {label!r}" if label is not None else ""))
    return ExitCode.OK


class _Lines:
    """One line per change: `<id> <status> <progress>%`, a JSON object, or the id."""

    def __init__(self, *, as_json: bool, quiet: bool) -> None:
        self.as_json, self.quiet = as_json, quiet

    def show(self, changed: Sequence[Job], active: Sequence[Job]) -> None:
        for job in changed:
            if self.as_json:
                out(json_line(job_dict(job)))
            elif self.quiet:
                out(job.id)
            else:
                out(f"{job.id} {job.status.value} {job.progress}%")
            if job.status.is_unsuccessful and not self.as_json:
                note(failure_line(job))

    def close(self) -> None:
        pass


class _LiveTable:
    """A table of the active jobs redrawn in place; finished jobs are printed above it."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=sys.stdout, force_terminal=True,
                               no_color=not use_colour(sys.stdout))
        self.live: Any = Live(self._table([]), console=self.console, refresh_per_second=4,
                              transient=True)
        self.live.start()

    def show(self, changed: Sequence[Job], active: Sequence[Job]) -> None:
        for job in changed:
            if job.status.is_final:
                line = failure_line(job) if job.error else f"job {job.id} {job.status.value}"
                self.live.console.print(clean(line), markup=False, highlight=False,
                                        style=_STYLE.get(job.status.value))
        self.live.update(self._table(active), refresh=True)

    def close(self) -> None:
        self.live.stop()

    @staticmethod
    def _table(jobs: Sequence[Job]) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"{len(jobs)} active job(s)", title_justify="left",
                      box=None, header_style="bold")
        for column in ("ID", "STATUS", "PROGRESS", "", "MODEL", "LABEL", "AGE"):
            table.add_column(column, no_wrap=True)
        table.add_column("PROMPT", max_width=60)  # the one column that gives way
        now = time.time()
        for j in jobs:
            table.add_row(j.id, Text(j.status.value, style=_STYLE.get(j.status.value, "")),
                          ProgressBar(total=100, completed=j.progress, width=12),
                          f"{j.progress}%", clean(j.model), clean(j.label or "-"),
                          _age(now - j.created_at),
                          Text(clean(" ".join(j.prompt.split()))[:200], no_wrap=True,
                               overflow="ellipsis"))
        return table


_STYLE = {"queued": "dim", "submitting": "cyan", "running": "cyan", "downloading": "blue",
          "completed": "green", "failed": "red", "cancelled": "yellow"}


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
