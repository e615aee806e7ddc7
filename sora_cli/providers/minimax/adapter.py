"""MiniMax's Hailuo video API as a provider (see providers/base.py). MiniMax has no
official Python client; this follows its API reference and its own tools.

- `Authorization: Bearer <MINIMAX_API_KEY>`; the global base is api.minimax.io
  (China: api.minimaxi.com, through SORA_MINIMAX_BASE_URL).
- Every answer is checked for `base_resp.status_code`: MiniMax reports most errors as
  HTTP 200 with a non-zero code (see `MiniMaxApi.answer_failure`).
- Create: `POST /v1/video_generation` with `model`, `prompt`, the mapped `duration` and
  `resolution` ("768P"), the job's params, and an image as `first_frame_image` (a URL or
  a data URI); the answer's `task_id` is the remote id.
- Poll: `GET /v1/query/video_generation?task_id=`: `Preparing`, `Queueing`,
  `Processing`, `Success` (with `file_id`), `Fail`. MiniMax's own CLI expects `Failed`
  where its docs say `Fail`: both count as failure; any other word keeps the job
  polling. No progress and no failure reason are documented: the failure's message is
  `base_resp`'s (1027: the generated video was flagged).
- Result: the `file_id` is kept; each download asks `GET /v1/files/retrieve?file_id=` for
  a fresh `file.download_url` (on a CDN, fetched without credentials; the docs give it
  one to nine hours) instead of storing a URL that expires.
- There is no task list and no cancel: an unanswered create can never be found again, so
  it is never re-sent (`create_unconfirmed`). No request-id header is documented.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import httpx

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job, JobError
from sora_cli.domain.providers import BUILTIN
from sora_cli.domain.text import redact
from sora_cli.errors import AmbiguousCreate, ApiError, AuthError, InvalidInput
from sora_cli.providers.base import Created, CreateRequest, Polled, RemoteState
from sora_cli.providers.content import ContentStream
from sora_cli.providers.endpoint import EndpointSettings
from sora_cli.providers.http import HttpApi
from sora_cli.providers.inputs import model_input, remote_id, result_url, text
from sora_cli.providers.outcome import Failure, ambiguous
from sora_cli.providers.wire import Answer, OnAttempt

STATES: Final = {"Preparing": RemoteState.QUEUED, "Queueing": RemoteState.QUEUED,
                 "Processing": RemoteState.RUNNING, "Success": RemoteState.COMPLETED,
                 "Fail": RemoteState.FAILED, "Failed": RemoteState.FAILED}
# base_resp codes (platform.minimax.io/docs/api-reference/errorcode), as the HTTP status
# that means the same, for the rules every provider shares: 1002 rate limit; 1004 and
# 2049 the key; 1008 balance; 1026 input flagged; 2013 invalid parameters; 1000 unknown,
# 1001 timeout and 1024 internal error are the server's (a create may have made a task).
EQUIVALENT: Final = {1002: 429, 1004: 401, 2049: 401, 1008: 402, 1026: 400, 1027: 400,
                     2013: 400, 1000: 500, 1001: 504, 1024: 500}
REFUSED: Final = frozenset({1002, 1004, 1008, 1026, 2013, 2049})  # a create made nothing


class MiniMaxApi(HttpApi):
    def answer_failure(self, data: dict[str, Any], headers: httpx.Headers, *,
                       billed: bool) -> Failure | None:
        """`base_resp.status_code` != 0 in a 200: an error. A query whose task failed
        (`Fail` with the reason's code) is a task's state, not an error of the call."""
        base = data.get("base_resp")
        code = base.get("status_code") if isinstance(base, Mapping) else None
        if (not isinstance(code, int) or isinstance(code, bool) or code == 0
                or data.get("status") in ("Fail", "Failed")):
            return None
        if billed and _id(data.get("task_id")) is not None:
            return None  # a task was made, whatever else the answer says: it is this job's
        assert isinstance(base, Mapping)
        message = redact(text(base.get("status_msg"), 300) or "no message",
                         [self._settings.api_key])
        status = EQUIVALENT.get(code, 500)
        request_id = headers.get("x-request-id")
        short = f"HTTP 200, base_resp {code}: {message}"
        if billed and code not in REFUSED:  # it may have made the task: never re-sent
            error = AmbiguousCreate(ambiguous(short), http_status=200, request_id=request_id)
            return Failure(error, False, short, 200, request_id)
        cls = AuthError if status == 401 else ApiError
        retryable = code == 1002 or (status >= 500 and not billed)
        return Failure(cls(f"{message} (MiniMax {code})", http_status=status, code=str(code),
                           request_id=request_id, retryable=retryable),
                       retryable, short, 200, request_id, headers)


def make(settings: Settings, **http: Any) -> MiniMaxProvider:
    p = settings.provider("minimax")
    assert p is not None
    return MiniMaxProvider(MiniMaxApi(EndpointSettings(
        p.base_url, p.api_key or "", settings.request_timeout, settings.max_retries,
        settings.ca_bundle), **http))


class MiniMaxProvider:
    name = "minimax"
    capabilities = BUILTIN["minimax"].capabilities

    def __init__(self, api: MiniMaxApi) -> None:
        self.api = api

    async def aclose(self) -> None:
        await self.api.aclose()

    def where(self, job: Job) -> str:
        return f"POST {self.api.base_url}/v1/video_generation"

    async def create(self, request: CreateRequest, *, on_attempt: OnAttempt) -> Created:
        body = {"model": request.job.model, **model_input(request)}
        answer = await self.api.call("POST", "/v1/video_generation", body=body,
                                     on_attempt=on_attempt, billed=True)
        task_id = _id(answer.value.get("task_id"))
        if task_id is None:
            raise AmbiguousCreate(ambiguous("the answer has no usable task_id"),
                                  http_status=200, request_id=answer.request_id)
        return Created(task_id, None, Polled(RemoteState.QUEUED, "Queueing",
                                             request_id=answer.request_id))

    async def poll(self, job: Job, *, on_attempt: OnAttempt) -> Polled:
        if remote_id(job.remote_id) is None:
            raise InvalidInput(f"not a MiniMax task id: {str(job.remote_id)[:140]!r}")
        answer = await self.api.call("GET", "/v1/query/video_generation",
                                     params={"task_id": str(job.remote_id)},
                                     on_attempt=on_attempt)
        return polled(answer)

    def open_result(self, job: Job, *, variant: str = "video", offset: int = 0
                    ) -> contextlib.AbstractAsyncContextManager[ContentStream]:
        file_id = _id((job.remote_handle or {}).get("result"))
        if variant != "video" or file_id is None:
            raise InvalidInput(f"job {job.id} has no MiniMax {variant} to fetch")
        return self._open(file_id, offset)

    @contextlib.asynccontextmanager
    async def _open(self, file_id: str, offset: int) -> AsyncIterator[ContentStream]:
        url = await self.download_url(file_id)
        async with self.api.open_stream(url, offset=offset) as stream:
            yield stream

    async def download_url(self, file_id: str) -> str:
        """A fresh download URL of a file (the one a query's `file_id` names)."""
        answer = await self.api.call("GET", "/v1/files/retrieve", params={"file_id": file_id})
        found = answer.value.get("file")
        url = result_url(found.get("download_url")) if isinstance(found, Mapping) else None
        if url is None:
            raise ApiError(f"MiniMax gave no download URL for file {file_id}",
                           http_status=404, code="expired", request_id=answer.request_id)
        return url

    def result_path(self, job: Job, variant: str = "video") -> str:
        return "/v1/files/retrieve (download_url)"


def _id(value: Any) -> str | None:
    """A task or file id: MiniMax writes them as strings of digits (or numbers)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    return remote_id(value)


def polled(answer: Answer[dict[str, Any]]) -> Polled:
    """A task's state, what failed it, and which file holds its video."""
    data, rid = answer.value, answer.request_id
    status = text(data.get("status"), 64) or "unknown"
    state = STATES.get(status, RemoteState.RUNNING)  # an unknown word: keep polling
    if state is RemoteState.COMPLETED:
        file_id = _id(data.get("file_id"))
        if file_id is None:
            return Polled(RemoteState.FAILED, status, error=JobError(
                "no_video", "the task succeeded, but names no usable file_id", request_id=rid))
        return Polled(state, status, 100, result=file_id, request_id=rid)
    if state is RemoteState.FAILED:
        base = data.get("base_resp")
        base = base if isinstance(base, Mapping) else {}
        code = base.get("status_code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        reason = text(base.get("status_msg"), 300)
        if reason is None or reason == "success" or code in (0, None):
            message = f"MiniMax reported the task as {status} (it gives no reason)"
        else:
            message = f"MiniMax reported the task as {status}: {reason} ({code})"
        return Polled(state, status, error=JobError(
            str(code) if isinstance(code, int) and code else "failed", message, request_id=rid))
    return Polled(state, status, request_id=rid)
