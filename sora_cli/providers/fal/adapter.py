"""fal's queue API as a provider (see providers/base.py).

- Submit: `POST {queue}/{endpoint id}` with the model's input; the answer's
  `request_id` is the remote id, and its `status_url`, `response_url` and `cancel_url`
  are the job's handle. They drop the endpoint's subpath (`fal-ai/kling-video/requests/
  {id}/status` for `fal-ai/kling-video/v2.1/master/text-to-video`): they are followed as
  given, never built, and only when they are on the queue's own origin.
- Status: `IN_QUEUE` (with the queue position), `IN_PROGRESS`, `COMPLETED`; a completed
  request that carries `error`/`error_type`, or whose result answers an error, failed.
- Result: `GET response_url`; the video is `video.url`, else the first file object whose
  `content_type` is `video/*`. It lives on fal's CDN, fetched without credentials.
- Cancel: `PUT cancel_url` (only while queued: an `ALREADY_COMPLETED` answer says so).
- An unanswered submit is looked for through the platform API's list of requests by
  endpoint (`GET {platform}/models/requests/by-endpoint`, with payloads), matched on the
  input sent and the time; that list holds only requests that have ended, so not
  finding it is never proof: the runner looks again until LIST_WAIT after the attempt,
  then fails the job with `create_unconfirmed` naming the endpoint and the time. It is
  never sent again by itself.
- Errors: `{"detail": "..."}` or a list of validation errors; `x-fal-request-id`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job, JobError
from sora_cli.domain.providers import BUILTIN
from sora_cli.errors import AmbiguousCreate, ApiError, InvalidInput, TransportError
from sora_cli.providers.base import Created, CreateRequest, Found, Polled, RemoteState
from sora_cli.providers.content import ContentStream
from sora_cli.providers.endpoint import EndpointSettings
from sora_cli.providers.http import HttpApi
from sora_cli.providers.inputs import (
    image_field,
    matches_input,
    model_input,
    remote_id,
    result_url,
    text,
    timestamp,
)
from sora_cli.providers.outcome import ambiguous
from sora_cli.providers.wire import OnAttempt, to_server

URL_KEYS: Final = ("status_url", "response_url", "cancel_url")
LIST_WAIT: Final = 30 * 60.0  # how long after an unanswered submit its request is looked for
MAX_LIST_PAGES: Final = 10
NAMESPACES: Final = ("workflows", "comfy")  # endpoint ids whose app has three parts


class FalApi(HttpApi):
    REQUEST_ID_HEADER = "x-fal-request-id"

    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self._settings.api_key}"}


def make(settings: Settings, **http: Any) -> FalProvider:
    p = settings.provider("fal")
    assert p is not None

    def endpoint(url: str) -> EndpointSettings:
        return EndpointSettings(url, p.api_key or "", settings.request_timeout,
                                settings.max_retries, settings.ca_bundle)

    platform = FalApi(endpoint(p.platform_url), **http) if p.platform_url else None
    return FalProvider(FalApi(endpoint(p.base_url), **http), platform)


class FalProvider:
    name = "fal"
    capabilities = BUILTIN["fal"].capabilities

    def __init__(self, queue: FalApi, platform: FalApi | None = None) -> None:
        self.queue = queue
        self.platform = platform

    async def aclose(self) -> None:
        await self.queue.aclose()
        if self.platform is not None:
            await self.platform.aclose()

    def where(self, job: Job) -> str:
        return f"POST {self.queue.base_url}/{job.model}"

    async def create(self, request: CreateRequest, *, on_attempt: OnAttempt) -> Created:
        job = request.job
        answer = await self.queue.call("POST", f"/{job.model}", body=model_input(request),
                                       on_attempt=on_attempt, billed=True)
        data = answer.value
        request_id = remote_id(data.get("request_id"))
        handle = {k: data.get(k) for k in URL_KEYS}
        if request_id is None or not all(isinstance(u, str) and result_url(u)
                                         and self.queue.same_origin(u) for u in handle.values()):
            # it answered, but with nothing usable to follow the request by
            raise AmbiguousCreate(ambiguous("the answer has no usable request id and status, "
                                            "response and cancel URLs on the queue's origin"),
                                  http_status=200, request_id=answer.request_id)
        position = data.get("queue_position")
        polled = Polled(RemoteState.QUEUED, "IN_QUEUE", queue_position=_count(position),
                        request_id=answer.request_id)
        return Created(request_id, handle, polled)

    async def poll(self, job: Job, *, on_attempt: OnAttempt) -> Polled:
        answer = await self.queue.call("GET", _url(job, "status_url"), params={"logs": "0"},
                                       on_attempt=on_attempt)
        data, rid = answer.value, answer.request_id
        status = text(data.get("status"), 64) or "unknown"
        if status == "IN_QUEUE":
            return Polled(RemoteState.QUEUED, status, 0, _count(data.get("queue_position")),
                          request_id=rid)
        if status != "COMPLETED":
            return Polled(RemoteState.RUNNING, status, request_id=rid)
        if data.get("error") is not None or data.get("error_type") is not None:
            code = text(data.get("error_type"), 80) or "failed"
            message = text(data.get("error")) or f"the request failed ({code})"
            return Polled(RemoteState.FAILED, status, error=JobError(code, message,
                                                                      request_id=rid))
        return await self._result(job, status, on_attempt)

    async def _result(self, job: Job, status: str, on_attempt: OnAttempt) -> Polled:
        """The completed request's output: where its video is, or why it has none."""
        try:
            answer = await self.queue.call("GET", _url(job, "response_url"),
                                           on_attempt=on_attempt)
        except ApiError as exc:
            if exc.http_status is not None and exc.http_status < 300:
                raise  # an answer we could not read: the runner asks again
            if exc.http_status is None or exc.http_status >= 500 or exc.retryable:
                raise TransportError(f"the result is not readable yet: {exc}", sent=True) from exc
            if exc.http_status == 404:
                return Polled(RemoteState.GONE, status, error=JobError(
                    "expired", "fal no longer keeps the request's result (it keeps it an "
                    "hour after the request ends)", 404, exc.request_id))
            return Polled(RemoteState.FAILED, status, error=JobError(
                exc.code or "failed", exc.message, exc.http_status, exc.request_id))
        url = video_url(answer.value)
        if url is None:
            return Polled(RemoteState.FAILED, status, error=JobError(
                "no_video", "the request completed, but its result has no video URL",
                request_id=answer.request_id))
        return Polled(RemoteState.COMPLETED, status, 100, result=url,
                      request_id=answer.request_id)

    def open_result(self, job: Job, *, variant: str = "video", offset: int = 0
                    ) -> contextlib.AbstractAsyncContextManager[ContentStream]:
        url = (job.remote_handle or {}).get("result")
        if variant != "video" or not isinstance(url, str) or result_url(url) is None:
            raise InvalidInput(f"job {job.id} has no fal {variant} to fetch")
        return self.queue.open_stream(url, offset=offset)

    def result_path(self, job: Job, variant: str = "video") -> str:
        url = (job.remote_handle or {}).get("result")
        return httpx.URL(url).path if isinstance(url, str) and result_url(url) else "(result)"

    async def cancel(self, job: Job, *, on_attempt: OnAttempt | None = None) -> str:
        try:
            await self.queue.call("PUT", _url(job, "cancel_url"), on_attempt=on_attempt)
        except ApiError as exc:
            if "ALREADY_COMPLETED" in exc.message:
                return ("fal says the request already ran (ALREADY_COMPLETED): it cannot be "
                        "cancelled and may be billed")
            raise
        return "fal cancelled it (a cancel only stops a request still in the queue)"

    async def find_created(self, request: CreateRequest, *, taken: Callable[[str], bool],
                           on_attempt: OnAttempt) -> Found:
        job = request.job
        assert job.create_started_at is not None
        if self.platform is None:
            return Found(undecided="no fal platform URL is configured: the requests cannot "
                         "be listed")
        sent = model_input(request)  # a local image is not in the request: not compared
        skip = image_field(job.provider, job.model)
        floor = job.create_started_at - 5.0  # a little slack for the two clocks
        candidates: list[tuple[float, str]] = []
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            params = {"endpoint_id": job.model, "expand": "payloads", "limit": "100",
                      "start": _iso(floor - 60)} | ({"cursor": cursor} if cursor else {})
            answer = await self.platform.call("GET", "/models/requests/by-endpoint",
                                              params=params, on_attempt=on_attempt)
            floor_there = to_server(floor, answer.server_skew)
            for item in _items(answer.value):
                rid = remote_id(item.get("request_id"))
                sent_at = timestamp(item.get("sent_at")) or timestamp(item.get("started_at"))
                if (rid is not None and item.get("endpoint_id") == job.model and not taken(rid)
                        and sent_at is not None and sent_at >= floor_there
                        and matches_input(sent, item.get("json_input"), skip=skip)):
                    candidates.append((sent_at, rid))
            cursor = text(answer.value.get("next_cursor"), 512)
            if answer.value.get("has_more") is not True or cursor is None:
                break
        if candidates:  # the earliest one the attempt could have made
            candidates.sort()
            chosen = candidates[0][1]
            others = tuple(rid for _, rid in candidates[1:])
            return Found(Created(chosen, self._handle(job.model, chosen)), others)
        if time.time() < job.create_started_at + LIST_WAIT:
            return Found(later=True)
        return Found(undecided=(
            f"fal listed no request of {job.model} matching it in the {LIST_WAIT / 60:g} "
            f"minutes after the attempt (sent at {_iso(job.create_started_at)}); it was not "
            "sent again: look for it among your fal requests before `sora retry`"))

    def _handle(self, endpoint: str, request_id: str) -> dict[str, str]:
        """A listed request's URLs, as the queue documents them: owner and app only."""
        parts = endpoint.split("/")
        app = "/".join(parts[:3] if parts[0] in NAMESPACES else parts[:2])
        base = self.queue.url(f"/{app}/requests/{request_id}")
        return {"status_url": f"{base}/status", "response_url": base,
                "cancel_url": f"{base}/cancel"}


def video_url(data: Any) -> str | None:
    """`video.url`, else the first file object whose content type is video/*."""
    video = data.get("video") if isinstance(data, Mapping) else None
    if isinstance(video, Mapping) and (url := result_url(video.get("url"))):
        return url
    return _first_video(data, depth=0)


def _first_video(value: Any, depth: int) -> str | None:
    if depth > 4:
        return None
    if isinstance(value, Mapping):
        kind = value.get("content_type")
        if isinstance(kind, str) and kind.startswith("video/") and (
                url := result_url(value.get("url"))):
            return url
        items: Any = value.values()
    elif isinstance(value, list):
        items = value[:100]
    else:
        return None
    for item in items:
        if (found := _first_video(item, depth + 1)) is not None:
            return found
    return None


def _url(job: Job, key: str) -> str:
    value = (job.remote_handle or {}).get(key)
    if not isinstance(value, str):
        raise ApiError(f"job {job.id} has no fal {key.replace('_', ' ')}")
    return value


def _items(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = data.get("items")
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9 \
        else None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
