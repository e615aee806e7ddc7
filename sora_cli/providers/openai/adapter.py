"""The OpenAI Videos contract as a provider (see providers/base.py): create or remix,
retrieve, the content endpoint (with its thumbnail and spritesheet variants), delete,
and reconciliation through the remote list (reconcile.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Final

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job, JobError
from sora_cli.domain.providers import BUILTIN
from sora_cli.domain.text import clean
from sora_cli.errors import ApiError
from sora_cli.providers.base import (
    Created,
    CreateRequest,
    Found,
    Looked,
    Polled,
    RemoteState,
)
from sora_cli.providers.content import ContentStream
from sora_cli.providers.openai.client import VideosClient
from sora_cli.providers.openai.reconcile import find_created
from sora_cli.providers.openai.settings import api_settings
from sora_cli.providers.openai.types import Video, id_segment
from sora_cli.providers.wire import Answer, OnAttempt, to_local

# The contract's words, and the synonyms servers of it document: LiteLLM answers
# `processing` for a running Veo or Runway job; OpenRouter's video API has `pending`,
# `cancelled` and `expired`. Any other word means "still running" (and is shown).
STATES: Final = {"queued": RemoteState.QUEUED, "pending": RemoteState.QUEUED,
                 "in_progress": RemoteState.RUNNING, "processing": RemoteState.RUNNING,
                 "running": RemoteState.RUNNING,
                 "completed": RemoteState.COMPLETED, "failed": RemoteState.FAILED,
                 "cancelled": RemoteState.CANCELLED, "canceled": RemoteState.CANCELLED,
                 "expired": RemoteState.GONE}


def make(settings: Settings, **http: Any) -> OpenAIProvider:
    return OpenAIProvider(VideosClient(api_settings(settings), **http))


class OpenAIProvider:
    name = "openai"
    capabilities = BUILTIN["openai"].capabilities

    def __init__(self, client: VideosClient) -> None:
        self.client = client

    async def aclose(self) -> None:
        await self.client.aclose()

    def where(self, job: Job) -> str:
        path = "/videos/{id}/remix" if job.remix_of else "/videos"
        return f"POST {self.client.base_url}{path}"

    async def create(self, request: CreateRequest, *, on_attempt: OnAttempt) -> Created:
        job = request.job
        if request.remix_source is not None:
            answer = await self.client.remix(request.remix_source, job.prompt,
                                             on_attempt=on_attempt)
        else:
            image = request.image
            url = image.url if image is not None else None
            upload = (image.name, image.data, image.mime) if image and not url else None
            answer = await self.client.create(
                prompt=job.prompt, model=job.model, size=job.size, seconds=job.seconds,
                image_url=url, image_file=upload, extra=job.params, on_attempt=on_attempt)
        return Created(answer.value.id, None, polled(answer))

    async def poll(self, job: Job, *, on_attempt: OnAttempt) -> Polled:
        assert job.remote_id is not None
        return polled(await self.client.retrieve(job.remote_id, on_attempt=on_attempt))

    def open_result(self, job: Job, *, variant: str = "video", offset: int = 0
                    ) -> contextlib.AbstractAsyncContextManager[ContentStream]:
        assert job.remote_id is not None
        return self.client.stream_content(job.remote_id, variant=variant, offset=offset)

    def result_path(self, job: Job, variant: str = "video") -> str:
        return f"/videos/{id_segment(job.remote_id or '')}/content"

    async def find_created(self, request: CreateRequest, *, taken: Callable[[str], bool],
                           on_attempt: OnAttempt) -> Found:
        found = await find_created(self.client, request.job, taken=taken,
                                   on_attempt=on_attempt, remixed_from=request.remix_source)
        if found.video is None:
            return Found(undecided=found.undecided)
        return Found(Created(found.video.id, None, from_video(found.video)), found.others)

    async def delete(self, job: Job, *, on_attempt: OnAttempt | None = None) -> bool:
        assert job.remote_id is not None
        try:
            answer = await self.client.delete(job.remote_id, on_attempt=on_attempt)
        except ApiError as exc:
            if exc.http_status == 404:
                return False
            raise
        if not answer.value:  # {"deleted": false}: it is still there
            raise ApiError("the server answered that it was not deleted",
                           request_id=answer.request_id)
        return True

    async def lookup(self, remote_id: str, *, on_attempt: OnAttempt | None = None) -> Looked:
        answer = await self.client.retrieve(remote_id, on_attempt=on_attempt)
        v = answer.value
        return Looked(v.id, v.prompt or "", v.model or "unknown", polled(answer),
                      to_local(v.created_at, answer.server_skew))


def from_video(video: Video, skew: float | None = None) -> Polled:
    state = STATES.get(video.status, RemoteState.RUNNING)  # unknown words: keep polling
    error = None
    if state is RemoteState.GONE:
        error = JobError("expired", f"the server says the video {clean(video.status)[:64]}")
    if state is RemoteState.FAILED:
        error = JobError(clean(video.error_code or "failed"),
                         clean(video.error_message or "the video generation failed"))
    return Polled(state, clean(video.status)[:64], video.progress, error=error,
                  expires_at=to_local(video.expires_at, skew))


def polled(answer: Answer[Video]) -> Polled:
    p = from_video(answer.value, answer.server_skew)
    hint = answer.poll_after_ms / 1000 if answer.poll_after_ms is not None else None
    error = p.error
    if error is not None:
        error = JobError(error.code, error.message, request_id=answer.request_id)
    return Polled(p.state, p.remote_status, p.progress, error=error, expires_at=p.expires_at,
                  poll_after=hint, request_id=answer.request_id)
