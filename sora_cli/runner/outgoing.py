"""What the runner hands a provider for a job beyond its fields, and the extras it saves.

- A job with `remix_of` is a remix of its source's remote video (providers that can).
- A job with an `image` hands over its URL, or the bytes of the checked copy under
  SORA_HOME/inputs with the content type the bytes show (each provider sends them its
  own way: a multipart file part, a data URI...).
- With `save_thumbnails`, a completed job's thumbnail is saved next to its video
  (providers with variants).

Jobs that can never be sent (the remix source is gone, the image file vanished or
changed) raise CannotSend: the runner fails them without sending anything. A kept
image is named by the sha256 of its bytes (SORA_HOME/inputs/<sha256>.<ext>): the bytes
read are checked against it, so a runner never sends another image than the one
submitted (on another host of a shared store, say, where the path may be another file
or none: `IMAGE_MISSING`, and the runner leaves the job to the host that kept it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sora_cli.domain.images import image_info, is_url, kept_sha256
from sora_cli.domain.jobs import Job
from sora_cli.errors import CannotSend, SoraError
from sora_cli.files import MAX_IMAGE_BYTES, read_regular_file
from sora_cli.providers.base import CreateRequest, ImageInput, Provider
from sora_cli.providers.download import download_from
from sora_cli.providers.wire import OnAttempt
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


IMAGE_MISSING = "image_missing"


def image_input(ref: str) -> ImageInput:
    """A job's image: its URL, or the kept file's bytes, checked: CannotSend
    (IMAGE_MISSING) when this host cannot read it, `image_changed` when its bytes are not
    the ones its name records."""
    if is_url(ref):
        return ImageInput(url=ref)
    try:
        data = read_regular_file(Path(ref), MAX_IMAGE_BYTES)
    except OSError as exc:
        raise CannotSend(IMAGE_MISSING, f"cannot read the image {ref}: "
                         f"{exc.strerror or exc}") from None
    expected = kept_sha256(Path(ref))
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise CannotSend("image_changed", f"the image {ref} is not the one submitted (its "
                         "bytes do not match the sha256 it was kept under); nothing was sent")
    info = image_info(data)
    if info is None:
        raise CannotSend("image_invalid", f"{ref} is no longer a JPEG, PNG or WebP image")
    return ImageInput(name=Path(ref).name, data=data, mime=info.mime)


def create_request(store: Store, job: Job) -> CreateRequest:
    """What the provider needs to send this job's create (or remix)."""
    image = image_input(job.image) if job.image is not None else None
    return CreateRequest(job, image, remix_source(store, job))


def match_request(store: Store, job: Job) -> CreateRequest:
    """The request to match an unanswered create against: no image bytes are read (the
    file may be gone by now), and a vanished remix source matches no remix."""
    image = ImageInput(url=job.image) if job.image is not None and is_url(job.image) else None
    return CreateRequest(job, image, remixed_from(store, job))


async def save_thumbnail(adapter: Provider, store: Store, job: Job, videos_dir: Path,
                         on_attempt: OnAttempt, runner_id: str,
                         timeout: float = 60.0) -> str | None:
    """Save videos/<id>.webp and return its path; a failure is logged, never fatal."""
    assert job.remote_id is not None
    try:
        saved = await download_from(
            lambda offset: adapter.open_result(job, variant="thumbnail", offset=offset),
            videos_dir / f"{job.id}.webp", name=job.remote_id,
            path=adapter.result_path(job, "thumbnail"), max_attempts=3, on_attempt=on_attempt,
            variant="thumbnail", timeout=timeout)
    except SoraError as exc:
        store.log(job.id, "thumbnail_failed", message=str(exc), runner_id=runner_id)
        return None
    return str(saved.path)
