"""`sora remix`: a new job that remixes a completed job's video with a new prompt."""

from __future__ import annotations

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import (
    JSON_OPT,
    QUIET_OPT,
    open_context,
    print_jobs,
    read_stdin,
    warn_if_insecure,
)


@app.command("remix")
def remix_cmd(
    tctx: typer.Context,
    job_id: str = typer.Argument(..., metavar="ID", help="The completed job to remix: id, "
                                 "prefix, remote id or @last."),
    prompt: str = typer.Argument(..., help="The new prompt; - reads it from stdin."),
    label: str = typer.Option(None, "--label", help="A label for the new job."),
    as_json: bool = JSON_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Record a job that remixes a completed job's video (POST /videos/{id}/remix); print
    its id. It has the source's model, size and seconds, and is billed like a new video.

    \b
    sora remix k3x9 "the same corgi, now at night"
    sora remix @last "in watercolour" -q | xargs sora wait --download
    """
    from sora_cli.services.housekeeping import remix  # here: `sora --help` never pays for it

    if prompt == "-":
        prompt = read_stdin().rstrip("\n")
    ctx = open_context(tctx)
    warn_if_insecure(ctx.settings)
    job = remix(ctx, job_id, prompt, label=label)
    print_jobs([job], as_json=as_json, quiet=True)
