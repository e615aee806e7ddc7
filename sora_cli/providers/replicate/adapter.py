"""Replicate's predictions API as a provider (see providers/base.py).

- Create: `POST /v1/models/{owner}/{name}/predictions` with `{"input": {...}}`; the
  prediction's `id` is the remote id.
- Poll: `GET /v1/predictions/{id}`: `starting`, `processing`, `succeeded`, `failed`,
  `canceled`, and `aborted` (a deadline passed before it started; not billed).
- Result: `output`, a URL or a list whose first item is one, on replicate.delivery
  (fetched without credentials). API outputs are deleted an hour after the prediction
  ends: `expires_at` says so, and the runner downloads at once.
- Cancel: `POST /v1/predictions/{id}/cancel`.
- An unanswered create is reconciled through `GET /v1/predictions` (newest first,
  `next` cursor URLs), matched on model, input and creation time, as the OpenAI list.
- Errors: problem JSON `{"title", "detail", "status"}`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job, JobError
from sora_cli.domain.providers import BUILTIN
from sora_cli.errors import AmbiguousCreate, InvalidInput
from sora_cli.providers.base import Created, CreateRequest, Found, Looked, Polled, RemoteState
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
from sora_cli.providers.wire import Answer, OnAttempt, to_local, to_server

OUTPUT_HOURS: Final = 1.0  # API outputs are deleted an hour after the prediction ends
MAX_LIST_PAGES: Final = 10  # 1,000 predictions
STATES: Final = {"starting": RemoteState.QUEUED, "processing": RemoteState.RUNNING,
                 "succeeded": RemoteState.COMPLETED, "failed": RemoteState.FAILED,
                 "canceled": RemoteState.CANCELLED, "aborted": RemoteState.CANCELLED}


class ReplicateApi(HttpApi):
    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._settings.api_key}"}


def make(settings: Settings, **http: Any) -> ReplicateProvider:
    p = settings.provider("replicate")
    assert p is not None
    return ReplicateProvider(ReplicateApi(EndpointSettings(
        p.base_url, p.api_key or "", settings.request_timeout, settings.max_retries,
        settings.ca_bundle), **http))


class ReplicateProvider:
    name = "replicate"
    capabilities = BUILTIN["replicate"].capabilities

    def __init__(self, api: ReplicateApi) -> None:
        self.api = api

    async def aclose(self) -> None:
        await self.api.aclose()

    def where(self, job: Job) -> str:
        return f"POST {self.api.base_url}/v1/models/{job.model}/predictions"

    async def create(self, request: CreateRequest, *, on_attempt: OnAttempt) -> Created:
        job = request.job
        answer = await self.api.call("POST", f"/v1/models/{job.model}/predictions",
                                     body={"input": model_input(request)},
                                     on_attempt=on_attempt, billed=True)
        prediction_id = remote_id(answer.value.get("id"))
        if prediction_id is None:
            raise AmbiguousCreate(ambiguous("the answer has no usable prediction id"),
                                  http_status=200, request_id=answer.request_id)
        return Created(prediction_id, None, polled(answer))

    async def poll(self, job: Job, *, on_attempt: OnAttempt) -> Polled:
        return polled(await self._get(job.remote_id, on_attempt))

    async def _get(self, prediction_id: str | None, on_attempt: OnAttempt | None
                   ) -> Answer[dict[str, Any]]:
        if remote_id(prediction_id) is None:
            raise InvalidInput(f"not a Replicate prediction id: {str(prediction_id)[:140]!r}")
        return await self.api.call("GET", f"/v1/predictions/{prediction_id}",
                                   on_attempt=on_attempt)

    def open_result(self, job: Job, *, variant: str = "video", offset: int = 0
                    ) -> contextlib.AbstractAsyncContextManager[ContentStream]:
        url = (job.remote_handle or {}).get("result")
        if variant != "video" or not isinstance(url, str) or result_url(url) is None:
            raise InvalidInput(f"job {job.id} has no Replicate {variant} to fetch")
        return self.api.open_stream(url, offset=offset)

    def result_path(self, job: Job, variant: str = "video") -> str:
        url = (job.remote_handle or {}).get("result")
        return httpx.URL(url).path if isinstance(url, str) and result_url(url) else "(result)"

    async def cancel(self, job: Job, *, on_attempt: OnAttempt | None = None) -> str:
        answer = await self.api.call("POST", f"/v1/predictions/{job.remote_id}/cancel",
                                     on_attempt=on_attempt)
        status = text(answer.value.get("status"), 64) or "unknown"
        if status in ("succeeded", "failed"):
            return f"Replicate says the prediction already {status}: it may be billed"
        return f"Replicate cancelled it ({status})"

    async def lookup(self, remote: str, *, on_attempt: OnAttempt | None = None) -> Looked:
        answer = await self._get(remote, on_attempt)
        data = answer.value
        found = data.get("input")
        inputs: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        params = {k: v for k, v in inputs.items() if k != "prompt" and isinstance(k, str)}
        return Looked(remote, text(inputs.get("prompt"), 32000) or "",
                      text(data.get("model"), 200) or "unknown", polled(answer),
                      to_local(timestamp(data.get("created_at")), answer.server_skew),
                      params=params or None)

    async def find_created(self, request: CreateRequest, *, taken: Callable[[str], bool],
                           on_attempt: OnAttempt) -> Found:
        job = request.job
        assert job.create_started_at is not None
        sent = model_input(request)  # a local image is not in the request: not compared
        skip = image_field(job.provider, job.model)
        floor: float | None = None
        candidates: list[Answer[dict[str, Any]]] = []  # newest first
        target, seen = "/v1/predictions", 0
        for _ in range(MAX_LIST_PAGES):
            page = await self.api.call("GET", target, on_attempt=on_attempt)
            if floor is None:  # the attempt's start on the server's clock, to the second
                floor = float(int(to_server(job.create_started_at, page.server_skew)))
            for item in _results(page.value):
                seen += 1
                created = timestamp(item.get("created_at"))
                if created is not None and created < floor:
                    return _found(candidates)  # newest first: everything further is older
                pid = remote_id(item.get("id"))
                if (pid is not None and created is not None and item.get("model") == job.model
                        and not taken(pid) and matches_input(sent, item.get("input"), skip=skip)):
                    candidates.append(Answer(dict(item), page.request_id, None,
                                             page.server_skew))
            following = page.value.get("next")
            if not isinstance(following, str) or not following:
                return _found(candidates)
            target = following  # an absolute URL: followed only on the API's origin
        if candidates:
            return _found(candidates)
        return Found(undecided=f"more than {seen} predictions were created since the attempt; "
                     "cannot tell whether it made one, so it is not sent again (check your "
                     "Replicate predictions for this prompt)")


def _found(candidates: list[Answer[dict[str, Any]]]) -> Found:
    if not candidates:
        return Found()
    earliest = candidates[-1]  # later in a newest-first list means created earlier
    others = tuple(str(c.value["id"]) for c in reversed(candidates[:-1]))
    return Found(Created(str(earliest.value["id"]), None, polled(earliest)), others)


def _results(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = data.get("results")
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


def polled(answer: Answer[dict[str, Any]]) -> Polled:
    """A prediction's state, what failed it, and where its video is."""
    data, rid = answer.value, answer.request_id
    status = text(data.get("status"), 64) or "unknown"
    state = STATES.get(status, RemoteState.RUNNING)
    ended = timestamp(data.get("completed_at"))
    expires = to_local(ended + OUTPUT_HOURS * 3600, answer.server_skew) if ended else None
    if data.get("data_removed") is True:
        return Polled(RemoteState.GONE, status, error=JobError(
            "expired", "Replicate deleted the prediction's output (API outputs are kept an "
            "hour after the prediction ends)", request_id=rid))
    if state is RemoteState.COMPLETED:
        output = data.get("output")
        url = result_url(output[0] if isinstance(output, list) and output else output)
        if url is None:
            return Polled(RemoteState.FAILED, status, error=JobError(
                "no_video", "the prediction succeeded, but its output is not a URL",
                request_id=rid))
        return Polled(state, status, 100, result=url, expires_at=expires, request_id=rid)
    if state is RemoteState.FAILED:
        message = text(data.get("error")) or "the prediction failed"
        return Polled(state, status, error=JobError("failed", message, request_id=rid))
    if state is RemoteState.CANCELLED:
        why = ("its deadline passed before it started (not billed)" if status == "aborted"
               else "it was cancelled on Replicate")
        return Polled(state, status, error=JobError(status, why, request_id=rid))
    return Polled(state, status, request_id=rid)

