"""`sora submit`: validate, record, wake the runner, print the id at once.

One prompt, or a batch (`--file`: one job per line, all checked before any is
recorded, then recorded in one transaction). `--dry-run` prints what would be sent
and its estimated cost instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import (
    JSON_OPT,
    QUIET_OPT,
    decode_utf8,
    note,
    open_context,
    out,
    print_jobs,
    read_stdin,
    warn_if_insecure,
)
from sora_cli.cli.completing import complete_model
from sora_cli.cli.render import cost_text, json_line
from sora_cli.domain.batch import BatchLine, check_request, parse_batch
from sora_cli.domain.jobs import VideoRequest
from sora_cli.domain.models import Draft, parse_params, parse_whole_seconds, resolve
from sora_cli.domain.money import request_cost
from sora_cli.domain.text import clean
from sora_cli.errors import InvalidInput
from sora_cli.services.context import Context
from sora_cli.services.export import output_path, refuse_existing
from sora_cli.services.providers import request_defaults
from sora_cli.services.submit import preview, submit, with_images


@app.command("submit")
def submit_cmd(
    tctx: typer.Context,
    prompt: str = typer.Argument(None, metavar="PROMPT", show_default=False,
                                 help="What the video shows; - reads it from stdin. Leave out "
                                 "with --file."),
    file: str = typer.Option(None, "--file", "-f", metavar="FILE", help="Many jobs: one "
                             "prompt per line, or JSON Lines with prompt and optional model, "
                             "size, seconds, image, label, params; - reads stdin. Blank lines "
                             "and # comments are skipped."),
    model: str = typer.Option(None, "--model", "-m", metavar="[PROVIDER:]MODEL",
                              help="fal:ENDPOINT, replicate:OWNER/NAME, NAME:MODEL of a named "
                              "endpoint or a plug-in, an alias (sora models) or an "
                              "OpenAI-contract model [default: from config, sora-2].",
                              autocompletion=complete_model),
    seconds: str = typer.Option(None, "--seconds", "-s", help="Length, one the model takes "
                                "(sora models) [default: the model's; sora-2: 4]."),
    size: str = typer.Option(None, "--size", metavar="WxH", help="Mapped onto the model's "
                             "aspect ratio and resolution; sora-2: 720x1280 or 1280x720, "
                             "sora-2-pro also 1024x1792, 1792x1024 [default: the model's]."),
    param: list[str] = typer.Option(None, "--param", "-p", metavar="KEY=VALUE",
                                    help="A field of the model's input, sent as given (JSON "
                                    "when VALUE parses as JSON, else a string); repeatable; "
                                    "overrides what --seconds/--size map to."),
    image: str = typer.Option(None, "--image", metavar="PATH|URL", help="Image reference: a "
                              "JPEG, PNG or WebP file (sora-2: of exactly --size pixels), or "
                              "a URL; sent in the model's image field."),
    fit: bool = typer.Option(False, "--fit", help="Resize and crop the image to --size "
                             "(needs Pillow: pip install 'sora-cli[image]')."),
    label: str = typer.Option(None, "--label", metavar="TEXT", help="Free text to group "
                              "jobs by (list, wait and cost take --label too)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be sent and its "
                                 "estimated cost; record nothing (no API key needed)."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Block until the job finishes."),
    download: bool = typer.Option(False, "--download", "-d", help="Wait, save the video, "
                                  "print its path (the id goes to stderr)."),
    output: str = typer.Option(None, "--output", "-o", help="File or directory for "
                               "--download."),
    timeout: float = typer.Option(None, "--timeout", help="With --wait: give up after S "
                                  "seconds (exit 5; the job keeps running).", metavar="S"),
    force: bool = typer.Option(False, "--force", help="Submit even over the budget "
                               "(max_job_cost, max_daily_cost) and, with --download, "
                               "overwrite an existing output file."),
    as_json: bool = JSON_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Record a text-to-video job and print its id at once; a runner sends it.

    \b
    sora submit -m kling "a corgi surfing at sunset" --seconds 5 --size 1280x720
    sora submit -m replicate:google/veo-3 "a lighthouse at dawn" -p generate_audio=false
    echo "a red fox" | sora submit -
    path=$(sora submit "a lighthouse at dawn" --download -o clips/)
    sora submit --file prompts.txt --label batch-7 > ids.txt
    sora submit --dry-run "a storm at sea" --model fal:fal-ai/veo3 --seconds 8
    """
    if (prompt is None) == (file is None):
        raise InvalidInput("give a PROMPT or --file FILE (one of the two)")
    if output is not None and not download:
        raise InvalidInput("--output goes with --download")
    if dry_run and (wait or download):
        raise InvalidInput("--dry-run records nothing: it cannot --wait or --download")
    ctx = open_context(tctx)
    s = ctx.settings
    draft = Draft(prompt="", model=model, size=size, label=label, image=image,
                  seconds=None if seconds is None else parse_whole_seconds(seconds),
                  params=parse_params(param or []))
    defaults = request_defaults(s)
    source = None if file is None else "stdin" if file == "-" else file
    if file is not None:
        items = parse_batch(_read(file), defaults=draft, source=str(source),
                            resolve=lambda d: resolve(d, defaults))
    else:
        text = read_stdin().rstrip("\n") if prompt == "-" else prompt
        items = [BatchLine(0, check_request(resolve(replace(draft, prompt=text), defaults)))]
    origins = [f"{source} line {i.line}" for i in items] if source is not None else None
    if dry_run:
        _dry_run(ctx, items, fit=fit, force=force, origins=origins, source=source,
                 as_json=as_json, quiet=quiet)
        return
    warn_if_insecure(s, (i.request.provider for i in items))
    if download and output is not None:
        path, is_dir = output_path(output, Path.cwd(), count=len(items))
        refuse_existing([] if is_dir else [path], force=force)  # before anything is recorded
    requests = with_images(items, fit=fit, home=s.home, source=source)
    jobs = submit(ctx, requests, force=force, origins=origins)
    waiting = wait or download
    if download:
        note(f"submitted {jobs[0].id}" if len(jobs) == 1 else f"submitted {len(jobs)} jobs")
    elif not (waiting and as_json):
        print_jobs(jobs, as_json=as_json, quiet=True)  # the objects, or just the ids
    if waiting:
        from sora_cli.cli.wait import run_wait  # here, so that `submit` comes first in --help

        raise typer.Exit(run_wait(ctx, jobs, timeout=timeout, fail_fast=file is None,
                                  download=download, out_path=output, as_json=as_json,
                                  quiet=quiet, force=force))


def _read(file: str) -> str:
    if file == "-":
        return read_stdin()
    try:
        data = Path(file).expanduser().read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"--file {file}: no such file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read --file {file}: {exc.strerror or exc}") from None
    return decode_utf8(data, f"--file {file}")


def _dry_run(ctx: Context, items: Sequence[BatchLine], *, fit: bool, force: bool,
             origins: Sequence[str] | None, source: str | None, as_json: bool,
             quiet: bool) -> None:
    """Check everything a submit would (images in a throwaway dir), print, record nothing."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sora-dry-run-") as scratch:
        with_images(items, fit=fit, home=Path(scratch), source=source)
    requests = [i.request for i in items]  # images shown as the user wrote them
    preview(ctx, requests, force=force, origins=origins)
    if quiet:
        return
    if as_json:
        for req in requests:
            out(json_line(request_dict(req)))
        return
    for line in request_table(requests):
        out(line)


def request_dict(req: VideoRequest) -> dict[str, object]:
    """What would be sent for one job, with `job_dict`'s field names."""
    return {"prompt": req.prompt, "provider": req.provider, "model": req.model,
            "size": req.size or None, "seconds": req.seconds or None, "image": req.image,
            "label": req.label, "params": dict(req.params) if req.params else None,
            "estimated_cost_usd": request_cost(req)}


def _ref(req: VideoRequest) -> str:
    return req.model if req.provider == "openai" else f"{req.provider}:{req.model}"


def request_table(requests: Sequence[VideoRequest]) -> list[str]:
    head = ("MODEL", "SIZE", "SECS", "EST.COST", "LABEL", "IMAGE", "PROMPT")
    rows = [(_cell(_ref(r), 60), r.size or "-", str(r.seconds or "-"),
             cost_text(request_cost(r)),
             _cell(r.label, 24), _cell(r.image, 40), _cell(r.prompt, 60)) for r in requests]
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in (head, *rows)]
    costs = [c for r in requests if (c := request_cost(r)) is not None]
    unpriced = len(requests) - len(costs)
    jobs = f"{len(requests)} job" + ("s" if len(requests) != 1 else "")
    lines.append(f"total: {jobs}, ~${sum(costs):.2f} estimated"
                 + (f" ({unpriced} with no known price)" if unpriced else "")
                 + "; nothing recorded (--dry-run)")
    return lines


def _cell(text: str | None, width: int) -> str:
    if text is None:
        return "-"
    text = clean(" ".join(text.split()))
    return text if len(text) <= width else text[: width - 1] + "…"
