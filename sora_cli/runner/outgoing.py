"""What the runner sends for a job beyond a plain create, and the extras it saves.

- A job with `remix_of` is sent as `POST /videos/{source remote id}/remix`.
- A job with an `image` sends it as a multipart file part (a file under
  SORA_HOME/inputs, with the content type its bytes show) or, for a URL, as the JSON
  object form `input_reference: {"image_url": ...}`.
- With `save_thumbnails`, a completed job's thumbnail is saved next to its video.

Jobs that can never be sent (the remix source is gone, the image file vanished)
raise CannotSend: the runner fails them without sending anything.
"""

from __future__ import annotations

from pathlib import Path

from sora_cli.domain.images import image_info, is_url
from sora_cli.domain.jobs import Job
from sora_cli.errors import CannotSend, SoraError
from sora_cli.providers.download import download_to
from sora_cli.providers.openai.client import Answer, ImageFile, OnAttempt, Video, VideosClient
from sora_cli.store.repository import Store


def remix_source(store: Store, job: Job) -> str | None:
    """The remote id of the video a remix job remixes (None for other jobs)."""
    if job.remix_of is None:
        return None
    source = store.get(job.remix_of)
    if source is None or source.remote_id is None:
        raise CannotSend("remix_source_missing", f"the job it remixes ({job.remix_of}) is no "
                         "longer in the store or has no remote video")
    return source.remote_id


def remixed_from(store: Store, job: Job) -> str | None:
    """Like `remix_source`, for matching: None when the source is gone."""
    try:
        return remix_source(store, job)
    except CannotSend:
        return None


def image_file(path: str) -> ImageFile:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CannotSend("image_missing", f"cannot read the image {path}: "
                         f"{exc.strerror or exc}") from None
    info = image_info(data)
    if info is None:
        raise CannotSend("image_invalid", f"{path} is no longer a JPEG, PNG or WebP image")
    return Path(path).name, data, info.mime


async def send_create(client: VideosClient, store: Store, job: Job,
                      on_attempt: OnAttempt) -> Answer[Video]:
    """The billed request that starts this job's remote video."""
    source = remix_source(store, job)
    if source is not None:
        return await client.remix(source, job.prompt, on_attempt=on_attempt)
    url = job.image if job.image is not None and is_url(job.image) else None
    upload = image_file(job.image) if job.image is not None and url is None else None
    return await client.create(prompt=job.prompt, model=job.model, size=job.size,
                               seconds=job.seconds, image_url=url, image_file=upload,
                               on_attempt=on_attempt)


async def save_thumbnail(client: VideosClient, store: Store, job: Job, videos_dir: Path,
                         on_attempt: OnAttempt, runner_id: str) -> str | None:
    """Save videos/<id>.webp and return its path; a failure is logged, never fatal."""
    assert job.remote_id is not None
    try:
        saved = await download_to(client, job.remote_id, videos_dir / f"{job.id}.webp",
                                  variant="thumbnail", max_attempts=3, on_attempt=on_attempt)
    except SoraError as exc:
        store.log(job.id, "thumbnail_failed", message=str(exc), runner_id=runner_id)
        return None
    return str(saved.path)
