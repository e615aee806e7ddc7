"""Runway's task API as a provider (see providers/base.py).

- Every request carries `Authorization: Bearer <RUNWAYML_API_SECRET>` and
  `X-Runway-Version: 2024-11-06`.
- Create: `POST /v1/text_to_video`, or `POST /v1/image_to_video` for a job with an image
  (`promptImage`: an https URL or a data URI up to 5 MB), with camelCase fields
  (`model`, `promptText`, `ratio` "1280:720", `duration`, and the job's params); the
  answer's `id` is the remote id.
- Poll: `GET /v1/tasks/{id}`: `PENDING`, `THROTTLED` (the organization is at its
  concurrency limit: the task waits, it is not refused), `RUNNING` (`progress` 0..1),
  `SUCCEEDED` (`output`: URLs), `FAILED` (`failure`, `failureCode` such as
  `SAFETY.INPUT.TEXT`), `CANCELLED` (cancelled or deleted). Runway asks for no more than
  one read every five seconds per task: that is the poll hint.
- Result: `output[0]`, a signed URL on another origin (fetched without credentials)
  that expires "within 24-48 hours"; a download that finds it stale (401, 403, 404,
  410) reads the task again for a fresh one, as Runway says to.
- Cancel: `DELETE /v1/tasks/{id}` (204): cancels a pending, throttled or running task,
  deletes any other. A task the server finds RUNNING is not refunded.
- There is no list of tasks: an unanswered create can never be found again, so it is
  never re-sent (`create_unconfirmed`, naming the endpoint and the time).
- Errors: `{"error": "...", "issues": [...], "docUrl": ...}`. No request-id header is
  documented; `apigw-requestid` (AWS API Gateway's) has been seen and is kept when sent.
- How long a finished task stays readable is not documented: its `expires_at` is left
  unknown.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import httpx

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job, JobError
from sora_cli.domain.providers import BUILTIN
from sora_cli.errors import AmbiguousCreate, ApiError, InvalidInput
from sora_cli.providers.base import Created, CreateRequest, Polled, RemoteState
from sora_cli.providers.content import ContentStream
from sora_cli.providers.endpoint import EndpointSettings
from sora_cli.providers.http import HttpApi
from sora_cli.providers.inputs import model_input, remote_id, result_url, text
from sora_cli.providers.outcome import ambiguous
from sora_cli.providers.wire import Answer, OnAttempt

VERSION: Final = "2024-11-06"  # the X-Runway-Version the API and runwayml 5.x speak
POLL_SECONDS: Final = 5.0  # "should not expect updates more frequent than once every 5 s"
STATES: Final = {"PENDING": RemoteState.QUEUED, "THROTTLED": RemoteState.QUEUED,
                 "RUNNING": RemoteState.RUNNING, "SUCCEEDED": RemoteState.COMPLETED,
                 "FAILED": RemoteState.FAILED, "CANCELLED": RemoteState.CANCELLED}
STALE: Final = (401, 403, 404, 410)  # what a signed URL past its expiry may answer


class RunwayApi(HttpApi):
    REQUEST_ID_HEADER = "apigw-requestid"

    def common_headers(self) -> dict[str, str]:
        return {**super().common_headers(), "X-Runway-Version": VERSION}


def make(settings: Settings, **http: Any) -> RunwayProvider:
    p = settings.provider("runway")
    assert p is not None
    return RunwayProvider(RunwayApi(EndpointSettings(
        p.base_url, p.api_key or "", settings.request_timeout, settings.max_retries,
        settings.ca_bundle), **http))


def request_body(request: CreateRequest) -> tuple[str, dict[str, Any]]:
    """The endpoint and body of a create: the prompt is `promptText`, the image
    `promptImage` (its field in the catalogue)."""
    fields = model_input(request)
    body: dict[str, Any] = {"model": request.job.model, "promptText": fields.pop("prompt"),
                            **fields}
    image = request.image is not None or "promptImage" in body
    return ("/v1/image_to_video" if image else "/v1/text_to_video"), body


class RunwayProvider:
    name = "runway"
    capabilities = BUILTIN["runway"].capabilities

    def __init__(self, api: RunwayApi) -> None:
        self.api = api

    async def aclose(self) -> None:
        await self.api.aclose()

    def where(self, job: Job) -> str:
        kind = "image_to_video" if job.image or "promptImage" in (job.params or {}) \
            else "text_to_video"
        return f"POST {self.api.base_url}/v1/{kind}"

    async def create(self, request: CreateRequest, *, on_attempt: OnAttempt) -> Created:
        path, body = request_body(request)
        answer = await self.api.call("POST", path, body=body, on_attempt=on_attempt,
                                     billed=True)
        task_id = remote_id(answer.value.get("id"))
        if task_id is None:
            raise AmbiguousCreate(ambiguous("the answer has no usable task id"),
                                  http_status=200, request_id=answer.request_id)
        return Created(task_id, None, Polled(RemoteState.QUEUED, "PENDING",
                                             poll_after=POLL_SECONDS,
                                             request_id=answer.request_id))

    async def poll(self, job: Job, *, on_attempt: OnAttempt) -> Polled:
        return polled(await self._get(job.remote_id, on_attempt))

    async def _get(self, task_id: str | None, on_attempt: OnAttempt | None
                   ) -> Answer[dict[str, Any]]:
        if remote_id(task_id) is None:
            raise InvalidInput(f"not a Runway task id: {str(task_id)[:140]!r}")
        return await self.api.call("GET", f"/v1/tasks/{task_id}", on_attempt=on_attempt)

    def open_result(self, job: Job, *, variant: str = "video", offset: int = 0
                    ) -> contextlib.AbstractAsyncContextManager[ContentStream]:
        url = (job.remote_handle or {}).get("result")
        if variant != "video" or not isinstance(url, str) or result_url(url) is None:
            raise InvalidInput(f"job {job.id} has no Runway {variant} to fetch")
        return self._open(job, url, offset)

    @contextlib.asynccontextmanager
    async def _open(self, job: Job, url: str, offset: int) -> AsyncIterator[ContentStream]:
        async with contextlib.AsyncExitStack() as stack:
            try:
                stream = await stack.enter_async_context(self.api.open_stream(url,
                                                                              offset=offset))
            except ApiError as exc:
                if exc.http_status not in STALE:
                    raise
                fresh = await self._fresh_url(job)  # "fetch the task again for fresh URLs"
                stream = await stack.enter_async_context(self.api.open_stream(fresh,
                                                                              offset=offset))
            yield stream

    async def _fresh_url(self, job: Job) -> str:
        p = polled(await self._get(job.remote_id, None))
        if p.state is not RemoteState.COMPLETED or p.result is None:
            raise ApiError(f"Runway no longer serves {job.remote_id}'s output "
                           f"({p.remote_status})", http_status=404, code="expired")
        return p.result

    def result_path(self, job: Job, variant: str = "video") -> str:
        url = (job.remote_handle or {}).get("result")
        return httpx.URL(url).path if isinstance(url, str) and result_url(url) else "(result)"

    async def cancel(self, job: Job, *, on_attempt: OnAttempt | None = None) -> str:
        try:
            await self.api.call("DELETE", f"/v1/tasks/{job.remote_id}", on_attempt=on_attempt)
        except ApiError as exc:
            if exc.http_status == 404:
                return "Runway no longer has the task (it was deleted)"
            raise
        return ("Runway cancelled it (a task that was already running is not refunded, and "
                "a finished one is deleted)")


def polled(answer: Answer[dict[str, Any]]) -> Polled:
    """A task's state, what failed it, and where its video is."""
    data, rid = answer.value, answer.request_id
    status = text(data.get("status"), 64) or "unknown"
    state = STATES.get(status, RemoteState.RUNNING)  # an unknown word: keep polling
    if state is RemoteState.COMPLETED:
        output = data.get("output")
        url = result_url(output[0]) if isinstance(output, list) and output else None
        if url is None:
            return Polled(RemoteState.FAILED, status, error=JobError(
                "no_video", "the task succeeded, but its output has no URL", request_id=rid))
        return Polled(state, status, 100, result=url, request_id=rid)
    if state is RemoteState.FAILED:
        code = text(data.get("failureCode"), 80) or "failed"
        message = text(data.get("failure")) or "the task failed"
        return Polled(state, status, error=JobError(code, message, request_id=rid))
    if state is RemoteState.CANCELLED:
        return Polled(state, status, error=JobError(
            "cancelled", "the task was cancelled or deleted on Runway", request_id=rid))
    return Polled(state, status, _progress(data) if state is RemoteState.RUNNING else 0,
                  poll_after=POLL_SECONDS, request_id=rid)


def _progress(data: Mapping[str, Any]) -> int | None:
    value = data.get("progress")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        return None
    return min(99, int(value * 100))
