"""`GET /api/jobs/{id}/video` and `/thumbnail`: the files the runner saved, with Range.

Only the paths the store recorded for the job are ever opened (a request names a job,
never a file). Byte ranges (206, and 416 for a range past the end) are Starlette's
`FileResponse`; a player seeks with them.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from fastapi.responses import FileResponse

from sora_cli.errors import JobNotFound
from sora_cli.serve.routes import CTX
from sora_cli.services.context import Context
from sora_cli.services.gallery import find_job, saved_file

router = APIRouter(prefix="/api")
TYPES: Final = {"video": "video/mp4", "thumbnail": "image/webp"}


def _file(ctx: Context, ref: str, variant: str) -> FileResponse:
    job = find_job(ctx, ref)
    path = saved_file(ctx, job, variant)
    if path is None:
        raise JobNotFound(f"job {job.id} has no saved {variant} here (status {job.status})")
    return FileResponse(path, media_type=TYPES[variant],
                        headers={"cache-control": "private, no-cache"})


@router.api_route("/jobs/{ref}/video", methods=["GET", "HEAD"], summary="The saved video",
                  response_class=FileResponse)
def video(ref: str, ctx: Context = CTX) -> FileResponse:
    """The MP4 the runner saved (`output_path`): 404 while there is none."""
    return _file(ctx, ref, "video")


@router.api_route("/jobs/{ref}/thumbnail", methods=["GET", "HEAD"],
                  summary="The saved thumbnail", response_class=FileResponse)
def thumbnail(ref: str, ctx: Context = CTX) -> FileResponse:
    """The WebP the runner saved (`thumbnail_path`, with `save_thumbnails` on)."""
    return _file(ctx, ref, "thumbnail")
