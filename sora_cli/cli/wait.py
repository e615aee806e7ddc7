"""`sora wait` and `sora download`: watch the store until jobs finish, save videos."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import JSON_OPT, QUIET_OPT, note, open_context, out, read_stdin
from sora_cli.cli.render import failure_line, job_dict, json_line
from sora_cli.config import keys_missing_for
from sora_cli.domain.jobs import Job, JobStatus
from sora_cli.errors import ExitCode, InvalidInput, SoraError
from sora_cli.services.context import Context
from sora_cli.services.export import export, output_targets, refuse_existing
from sora_cli.services.jobs import read_refs
from sora_cli.services.waiting import wait_targets, watch


class _Progress:
    """Live bars on stderr, only on a terminal; a no-op otherwise."""

    def __init__(self, jobs: Sequence[Job], enabled: bool) -> None:
        self._bars: Any = None
        self._tasks: dict[str, Any] = {}
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bars = Progress(TextColumn("{task.description}"), BarColumn(),
                              TextColumn("{task.percentage:>3.0f}%"),
                              TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                              console=Console(stderr=True), transient=True)
        for job in jobs[:20]:
            self._tasks[job.id] = self._bars.add_task(job.id, total=100, status=job.status)
        self._bars.start()

    def update(self, jobs: Sequence[Job]) -> None:
        if self._bars is None:
            return
        for job in jobs:
            if job.id in self._tasks:
                self._bars.update(self._tasks[job.id], completed=job.progress,
                                  status=job.status.value)

    def stop(self) -> None:
        if self._bars is not None:
            self._bars.stop()


def run_wait(ctx: Context, jobs: Sequence[Job], *, timeout: float | None, fail_fast: bool,
             download: bool, out_path: str | None, as_json: bool, quiet: bool,
             force: bool) -> int:
    """Wait for jobs; print paths or JSON in argument order; return the exit code."""
    if timeout is not None and timeout < 0:
        raise InvalidInput("--timeout must be 0 or more seconds")
    ids = [j.id for j in jobs]
    targets = output_targets(ids, out_path, Path.cwd()) if download else {}
    refuse_existing(targets.values(), force=force)
    if missing := keys_missing_for(ctx.settings, [j for j in jobs if j.status.is_active]):
        note(f"warning: no {', '.join(missing)} here: a runner started from this shell "
             "leaves those jobs as they are (run sora with the key to move them on)")
    reported: set[str] = set()
    failed = False
    emitted = 0
    latest = {j.id: j for j in jobs}
    bars = _Progress(jobs, enabled=not quiet and sys.stderr.isatty())
    try:
        for snapshot in watch(ctx, ids, timeout=timeout):
            latest.update({j.id: j for j in snapshot})
            bars.update(snapshot)
            for job in snapshot:
                if job.status.is_unsuccessful and job.id not in reported:
                    reported.add(job.id)
                    failed = True
                    note(failure_line(job))
            while emitted < len(ids) and latest[ids[emitted]].status.is_final:
                failed |= not _finish(ctx, latest[ids[emitted]], targets, as_json, force)
                emitted += 1
            if failed and fail_fast:
                break
    finally:
        bars.stop()
    if failed:
        return _failure_code(latest.values())
    if emitted < len(ids):
        after = "" if timeout is None else f" after {timeout:g} s"
        note(f"timed out{after} with {len(ids) - emitted} job(s) unfinished "
             "(they keep running in the background)")
        return ExitCode.TIMEOUT
    return ExitCode.OK


def _failure_code(jobs: Iterable[Job]) -> int:
    """4 when the server rejected our credentials (fixing the key is the way on), else 1."""
    rejected = any(j.error is not None and j.error.http_status in (401, 403) for j in jobs)
    return ExitCode.AUTH if rejected else ExitCode.FAILED


def _finish(ctx: Context, job: Job, targets: dict[str, Path], as_json: bool,
            force: bool) -> bool:
    """Output for one finished job, in argument order. False when saving it failed."""
    data = job_dict(job)
    ok = True
    if job.status is JobStatus.COMPLETED and job.id in targets:
        try:
            path = export(ctx, job, targets[job.id], force=force, note=note)
        except SoraError as exc:
            note(f"job {job.id}: {exc}")
            ok = False
        else:
            data["download_path"] = str(path)
            if not as_json:
                out(shown(path))
    if as_json:
        out(json_line(data))
    return ok


def shown(path: Path) -> str:
    """A saved file's path as the user wrote it: relative when under the current dir."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@app.command("wait")
def wait_cmd(
    tctx: typer.Context,
    ids: list[str] = typer.Argument(None, help="Job ids, prefixes, remote ids, @last; - reads "
                                    "ids from stdin.", show_default=False),
    all_: bool = typer.Option(False, "--all", help="Wait for every unfinished job."),
    label: str = typer.Option(None, "--label", metavar="TEXT", help="Wait for every job "
                              "with this label (finished ones too: --download saves them)."),
    timeout: float = typer.Option(None, "--timeout", help="Give up after S seconds (exit 5).",
                                  metavar="S"),
    fail_fast: bool = typer.Option(False, "--fail-fast", help="Stop at the first failure."),
    download: bool = typer.Option(False, "--download", "-d", help="Save each video."),
    output: str = typer.Option(None, "--output", "-o", help="Directory (or file name for "
                               "one job) for --download; default: the current dir."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
    as_json: bool = JSON_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Wait until jobs finish (watching the local store), optionally saving the videos.

    Exit 0 when all completed, 1 when any failed or was cancelled (4 when the server
    rejected the API key), 5 on --timeout.

    \b
    sora wait k3x9 --download -o clips/
    sora submit -q "a red fox" | xargs sora wait --download
    sora wait --label batch-7 --download -o out/
    """
    ctx = open_context(tctx)
    stdin_text = read_stdin() if "-" in (ids or []) else None
    refs = read_refs(ids or [], stdin_text)
    if not (refs or all_ or label is not None):
        raise InvalidInput("name the jobs to wait for (ids, -, --label or --all)")
    jobs = wait_targets(ctx, refs, label=label, all_active=all_)
    code = run_wait(ctx, jobs, timeout=timeout, fail_fast=fail_fast, download=download,
                    out_path=output, as_json=as_json, quiet=quiet, force=force)
    raise typer.Exit(code)
