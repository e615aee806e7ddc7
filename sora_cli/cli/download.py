"""`sora download`: save a finished job's video (or its thumbnail or spritesheet)."""

from __future__ import annotations

from pathlib import Path

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import note, open_context, out, warn_if_insecure
from sora_cli.cli.wait import shown
from sora_cli.domain.jobs import JobStatus
from sora_cli.errors import SoraError
from sora_cli.services.export import output_targets
from sora_cli.services.jobs import resolve


@app.command("download")
def download_cmd(
    tctx: typer.Context,
    job_id: str = typer.Argument(..., metavar="ID", help="Job id, prefix, remote id or @last."),
    output: str = typer.Option(None, "--output", "-o", help="File or directory to write."),
    variant: str = typer.Option("video", "--variant", help="video (mp4), thumbnail (webp) "
                                "or spritesheet (jpg)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Save a finished job's video: the runner's copy, or fetched while not expired.
    --variant thumbnail|spritesheet saves those instead (<id>.webp / <id>.jpg).

    \b
    sora download k3x9 -o corgi.mp4
    sora download k3x9 --variant thumbnail -o thumbs/
    """
    from sora_cli.services.housekeeping import check_variant, export_variant, variant_target
    from sora_cli.services.recover import save_video

    variant = check_variant(variant)
    ctx = open_context(tctx)
    warn_if_insecure(ctx.settings)
    job = resolve(ctx, job_id)
    ctx.kick_runner()
    if variant != "video":
        if job.status is not JobStatus.COMPLETED and job.remote_status != "completed":
            raise SoraError(f"job {job.id} is {job.status}: nothing to download yet")
        dest = variant_target(job.id, output, variant, Path.cwd())
        out(shown(export_variant(ctx, job, dest, variant, force=force)))
        return
    dest = output_targets([job.id], output, Path.cwd())[job.id]
    out(shown(save_video(ctx, job, dest, force=force, note=note)))
