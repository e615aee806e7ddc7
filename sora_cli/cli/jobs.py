"""`sora status`, `sora list` and `sora cancel`: reading and steering the job store."""

from __future__ import annotations

import sys

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import JSON_OPT, QUIET_OPT, note, open_context, out, print_jobs, read_stdin
from sora_cli.cli.render import detail, table, use_colour
from sora_cli.domain.jobs import JobStatus
from sora_cli.domain.text import scrub
from sora_cli.errors import InvalidInput
from sora_cli.services.jobs import cancel, links, list_jobs, read_refs, resolve_all

IDS_ARG = typer.Argument(..., help="Job ids, unique prefixes (4+ chars), remote video_ ids, "
                         "or @last; - reads ids from stdin.", show_default=False)


def _refs(ids: list[str]) -> list[str]:
    refs = read_refs(ids, read_stdin() if "-" in ids else None)
    if not refs:
        raise InvalidInput("no job ids given")
    return refs


@app.command("status")
def status_cmd(tctx: typer.Context, ids: list[str] = IDS_ARG, as_json: bool = JSON_OPT,
               quiet: bool = QUIET_OPT) -> None:
    """Show jobs from the local store (exit 0 whatever their state, 3 if unknown).

    \b
    sora status k3x9
    sora status @last --json | jq -r .status
    """
    ctx = open_context(tctx)
    jobs = resolve_all(ctx, _refs(ids))
    ctx.kick_runner()
    if not print_jobs(jobs, as_json=as_json, quiet=quiet):
        colour = use_colour(sys.stdout)
        out("\n\n".join(detail(j, colour=colour, links=links(ctx, j.id)) for j in jobs))


def _statuses(values: list[str] | None) -> list[JobStatus]:
    try:
        return [JobStatus(v.strip().lower()) for v in values or []]
    except ValueError:
        names = ", ".join(s.value for s in JobStatus)
        raise InvalidInput(f"--status must be one of {names}") from None


@app.command("list")
def list_cmd(
    tctx: typer.Context,
    status: list[str] = typer.Option(None, "--status", help="Only jobs in this status "
                                     "(repeatable).", show_default=False),
    limit: int = typer.Option(20, "--limit", "-n", help="How many, newest first."),
    all_: bool = typer.Option(False, "--all", "-a", help="Every job (no limit)."),
    label: str = typer.Option(None, "--label", metavar="TEXT", help="Only jobs with this "
                              "label (exactly)."),
    as_json: bool = JSON_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """List jobs, newest first.

    \b
    sora list
    sora list --status failed --json
    sora list --label batch-7 --all
    sora list -q --status completed | xargs -n1 sora download
    """
    ctx = open_context(tctx)
    jobs = list_jobs(ctx, statuses=_statuses(status), limit=None if all_ else limit,
                     label=label)
    ctx.kick_runner()
    if not print_jobs(jobs, as_json=as_json, quiet=quiet):
        if jobs:
            out(table(jobs, colour=use_colour(sys.stdout)))
        else:
            note("no jobs")


@app.command("cancel")
def cancel_cmd(tctx: typer.Context, ids: list[str] = IDS_ARG, as_json: bool = JSON_OPT,
               quiet: bool = QUIET_OPT) -> None:
    """Cancel jobs. A job not yet sent never will be; one already sent stops being
    tracked, and the remote job may still run and be billed.

    \b
    sora cancel k3x9
    """
    ctx = open_context(tctx)
    results = cancel(ctx, _refs(ids))
    if not print_jobs([j for j, _ in results], as_json=as_json, quiet=quiet):
        for job, why in results:
            out(f"{job.id} {job.status.value}: {scrub(why)}")
