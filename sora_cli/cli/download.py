"""`sora download`: save a finished job's video where the user wants it."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import SoraError
from ..jobs import JobStatus
from ..services import export, output_targets
from . import app
from .common import open_context, out
from .wait import shown


@app.command("download")
def download_cmd(
    tctx: typer.Context,
    job_id: str = typer.Argument(..., metavar="ID", help="Job id, prefix, remote id or @last."),
    output: str = typer.Option(None, "--output", "-o", help="File or directory to write."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Save a finished job's video: the runner's copy, or fetched while not expired.

    \b
    sora download k3x9 -o corgi.mp4
    """
    ctx = open_context(tctx)
    job = ctx.store.resolve(job_id)
    ctx.kick_runner()
    if job.status is not JobStatus.COMPLETED and job.remote_status != "completed":
        raise SoraError(f"job {job.id} is {job.status}: nothing to download yet")
    dest = output_targets([job.id], output, Path.cwd())[job.id]
    out(shown(export(ctx, job, dest, force=force)))
