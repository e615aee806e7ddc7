"""`sora retry`, `sora delete` and `sora prune`: steering and tidying the job store."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import (
    JSON_OPT,
    QUIET_OPT,
    note,
    open_context,
    out,
    print_jobs,
    read_stdin,
    warn_if_insecure,
)
from sora_cli.cli.render import table, use_colour
from sora_cli.domain.jobs import Job
from sora_cli.errors import ExitCode, InvalidInput
from sora_cli.services.context import Context
from sora_cli.services.jobs import read_refs, resolve_all

YES_OPT = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")


def interactive() -> bool:
    """Whether a human can answer a question (stdin and stderr on a terminal)."""
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def confirm(question: str, *, yes: bool) -> None:
    """Go on with `--yes`, or when a human says so; never silently without either."""
    if yes:
        return
    if not interactive():
        raise InvalidInput(f"{question.rstrip('?')}: not on a terminal, add --yes to confirm")
    if not typer.confirm(question, default=False, err=True):
        note("nothing deleted")
        raise typer.Exit(ExitCode.FAILED)


def _refs(ids: Sequence[str]) -> list[str]:
    return read_refs(ids, read_stdin() if "-" in ids else None)


@app.command("retry")
def retry_cmd(
    tctx: typer.Context,
    ids: list[str] = typer.Argument(None, help="Failed or cancelled jobs; - reads ids "
                                    "from stdin.", show_default=False),
    failed: bool = typer.Option(False, "--failed", help="Every failed job not retried yet."),
    as_json: bool = JSON_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Submit failed or cancelled jobs again, as new jobs linked to the old ones
    (same prompt, model, size, seconds, label, image); print the new ids.

    \b
    sora retry k3x9
    sora retry --failed
    """
    from sora_cli.services.housekeeping import (  # here: `sora --help` never pays for them
        retry,
        retry_targets,
    )

    ctx = open_context(tctx)
    warn_if_insecure(ctx.settings)
    jobs = retry_targets(ctx, _refs(ids or []), failed=failed)
    if not jobs:
        note("no failed jobs to retry")
        return
    new = retry(ctx, jobs)
    print_jobs(new, as_json=as_json, quiet=True)


@app.command("delete")
def delete_cmd(
    tctx: typer.Context,
    ids: list[str] = typer.Argument(..., help="Jobs to delete; - reads ids from stdin.",
                                    show_default=False),
    remote: bool = typer.Option(False, "--remote", help="Also delete the remote videos "
                                "(completed or failed jobs only)."),
    yes: bool = YES_OPT,
) -> None:
    """Delete jobs, their history and their saved files from the store; with --remote,
    their videos on the server too. Asks first on a terminal; --yes skips that.
    Prints the ids deleted. A deleted id is never given to a new job.

    \b
    sora delete k3x9 --yes
    sora list -q --status failed | sora delete - --remote --yes
    """
    ctx = open_context(tctx)
    jobs = resolve_all(ctx, _refs(ids))
    if not jobs:
        raise InvalidInput("no job ids given")
    if remote:
        from sora_cli.services.housekeeping import check_remote_delete

        check_remote_delete(jobs)
        warn_if_insecure(ctx.settings)
    where = " and their remote videos" if remote else ""
    confirm(f"Delete {len(jobs)} job(s){where}?", yes=yes)
    failures = 0
    if remote:
        from sora_cli.services.remote import delete_remote

        result = delete_remote(ctx, jobs)
        for line in result.notes:
            note(line)
        for job, why in result.failed:
            note(f"job {job.id} kept: cannot delete {job.remote_id}: {why}")
        failures, jobs = len(result.failed), result.done
    _delete(ctx, jobs, as_json=False)
    if failures:
        raise typer.Exit(ExitCode.FAILED)


def _delete(ctx: Context, jobs: Sequence[Job], *, as_json: bool) -> None:
    for job in jobs:
        if job.status.is_active and job.remote_id is not None:
            note(f"job {job.id} was {job.status}: the remote job may still run and be billed")
    from sora_cli.services.housekeeping import remove_local

    remove_local(ctx, jobs)
    print_jobs(jobs, as_json=as_json, quiet=True)


@app.command("prune")
def prune_cmd(
    tctx: typer.Context,
    older_than: str = typer.Option(..., "--older-than", help="Age: 30d, 12h, 90m, 2w.",
                                   metavar="AGE"),
    status: list[str] = typer.Option(None, "--status", help="Only jobs in this status "
                                     "(repeatable) [default: completed, failed, cancelled].",
                                     show_default=False),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would go; "
                                 "change nothing."),
    yes: bool = YES_OPT,
    as_json: bool = JSON_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Delete jobs created longer ago than AGE, with their history and saved files
    (local only). Only finished jobs unless --status says otherwise.

    \b
    sora prune --older-than 30d --dry-run
    sora prune --older-than 7d --status failed --yes
    """
    from sora_cli.services.housekeeping import prune_targets

    ctx = open_context(tctx)
    jobs = prune_targets(ctx, older_than, status or [])
    if dry_run:
        if not print_jobs(jobs, as_json=as_json, quiet=quiet) and jobs:
            out(table(jobs, colour=use_colour(sys.stdout)))
        note(f"{len(jobs)} job(s) would be deleted (dry run: nothing changed)")
        return
    if not jobs:
        note("no jobs to prune")
        return
    confirm(f"Delete {len(jobs)} job(s) older than {older_than}?", yes=yes)
    _delete(ctx, jobs, as_json=as_json)
    note(f"deleted {len(jobs)} job(s)")
