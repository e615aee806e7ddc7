"""`sora submit`: validate, record, wake the runner, print the id at once."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import InvalidInput
from ..jobs import VideoRequest, parse_seconds
from ..services import output_path, refuse_existing, submit
from . import app
from .common import JSON_OPT, QUIET_OPT, note, open_context, print_jobs


@app.command("submit")
def submit_cmd(
    tctx: typer.Context,
    prompt: str = typer.Argument(..., help="What the video shows; - reads it from stdin."),
    model: str = typer.Option(None, "--model", "-m", help="Model or deployment name "
                              "[default: from config, sora-2]."),
    seconds: str = typer.Option(None, "--seconds", "-s", help="4, 8 or 12 [default: 4]."),
    size: str = typer.Option(None, "--size", help="720x1280, 1280x720, 1024x1792 or "
                             "1792x1024 (the last two: sora-2-pro) [default: 720x1280]."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Block until the job finishes."),
    download: bool = typer.Option(False, "--download", "-d", help="Wait, save the video, "
                                  "print its path (the id goes to stderr)."),
    output: str = typer.Option(None, "--output", "-o", help="File or directory for "
                               "--download."),
    timeout: float = typer.Option(None, "--timeout", help="With --wait: give up after S "
                                  "seconds (exit 5; the job keeps running).", metavar="S"),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    as_json: bool = JSON_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Record a text-to-video job and print its id at once; a runner sends it.

    \b
    sora submit "a corgi surfing at sunset" --seconds 8 --size 1280x720
    echo "a red fox" | sora submit -
    path=$(sora submit "a lighthouse at dawn" --download -o clips/)
    """
    if prompt == "-":
        prompt = sys.stdin.read().rstrip("\n")
    ctx = open_context(tctx)
    s = ctx.settings
    req = VideoRequest(prompt=prompt, model=model or s.model, size=size or s.size,
                       seconds=parse_seconds(seconds if seconds is not None else s.seconds))
    if (output is not None or force) and not download:
        raise InvalidInput("--output and --force go with --download")
    if download and output is not None:
        path, is_dir = output_path(output, Path.cwd(), count=1)
        refuse_existing([] if is_dir else [path], force=force)  # before anything is recorded
    (job,) = submit(ctx, [req])
    waiting = wait or download
    if download:
        note(f"submitted {job.id}")
    elif not (waiting and as_json):
        print_jobs([job], as_json=as_json, quiet=True)  # the object, or just the id
    if waiting:
        from .wait import run_wait  # here, so that `submit` comes first in --help

        raise typer.Exit(run_wait(ctx, [job], timeout=timeout, fail_fast=True,
                                  download=download, out_path=output, as_json=as_json,
                                  quiet=quiet, force=force))
