"""Luma's Dream Machine API as a provider (see providers/base.py).

- The base URL ends with `/dream-machine/v1` (as `LUMAAI_BASE_URL` does for the official
  client); `Authorization: Bearer <LUMAAI_API_KEY>`.
- Create: `POST /generations/video`, the path the official client `lumaai` posts to
  (the docs' examples post to `/generations`), with `model`, `prompt`, the mapped
  fields (`duration` "5s", `aspect_ratio`, `resolution`), the job's params, and an image
  as the first keyframe, `keyframes.frame0 = {type: "image", url}`: URLs only.
  The answer is the generation; its `id` is the remote id.
- Poll: `GET /generations/{id}`: `state` `queued`, `dreaming`, `completed` (the video
  is `assets.video`, on another origin, fetched without credentials) or `failed`
  (`failure_reason`). There is no progress; how long the assets stay is not documented.
- An unanswered create is looked for in `GET /generations?limit=&offset=` (no filter,
  no documented order): every listed generation created since the attempt whose echoed
  `request` has the job's model and prompt, and no field that differs from what was
  sent. A list that cannot be read is "unknown", never "absent": the job waits.
  More than MAX_LIST_PAGES pages without a match: it is not sent again.
- Cancel: there is none; `DELETE /generations/{id}` deletes the generation (whether that
  stops a running one, and its billing, is not documented: the note says so).
- Errors and request ids of this API are not documented; the usual shapes are read.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job, JobError
from sora_cli.domain.providers import BUILTIN
from sora_cli.errors import AmbiguousCreate, ApiError, CannotSend, InvalidInput
from sora_cli.providers.base import (
    Created,
    CreateRequest,
    Found,
    Looked,
    Polled,
    RemoteState,
)
from sora_cli.providers.content import ContentStream
from sora_cli.providers.endpoint import EndpointSettings
from sora_cli.providers.http import HttpApi
from sora_cli.providers.inputs import remote_id, result_url, text, timestamp
from sora_cli.providers.outcome import ambiguous
from sora_cli.providers.wire import Answer, OnAttempt, to_local, to_server

PAGE: Final = 100  # generations a list page asks for (the maximum is not documented)
MAX_LIST_PAGES: Final = 10
STATES: Final = {"queued": RemoteState.QUEUED, "dreaming": RemoteState.RUNNING,
                 "completed": RemoteState.COMPLETED, "failed": RemoteState.FAILED}
NOT_COMPARED: Final = ("keyframes",)  # Luma may keep an image under a URL of its own


def make(settings: Settings, **http: Any) -> LumaProvider:
    p = settings.provider("luma")
    assert p is not None
    return LumaProvider(HttpApi(EndpointSettings(
        p.base_url, p.api_key or "", settings.request_timeout, settings.max_retries,
        settings.ca_bundle), **http))


def request_body(request: CreateRequest) -> dict[str, Any]:
    job = request.job
    body: dict[str, Any] = {"model": job.model, "prompt": job.prompt, **(job.params or {})}
    image = request.image
    if image is not None:
        if image.url is None:
            raise CannotSend("image_unsupported", "Luma takes an image by its URL only "
                             "(keyframes): give --image a URL")
        body["keyframes"] = {"frame0": {"type": "image", "url": image.url}}
    return body


class LumaProvider:
    name = "luma"
    capabilities = BUILTIN["luma"].capabilities

    def __init__(self, api: HttpApi) -> None:
        self.api = api

    async def aclose(self) -> None:
        await self.api.aclose()

    def where(self, job: Job) -> str:
        return f"POST {self.api.base_url}/generations/video"

    async def create(self, request: CreateRequest, *, on_attempt: OnAttempt) -> Created:
        answer = await self.api.call("POST", "/generations/video", body=request_body(request),
                                     on_attempt=on_attempt, billed=True)
        generation_id = remote_id(answer.value.get("id"))
        if generation_id is None:
            raise AmbiguousCreate(ambiguous("the answer has no usable generation id"),
                                  http_status=200, request_id=answer.request_id)
        return Created(generation_id, None, polled(answer))

    async def poll(self, job: Job, *, on_attempt: OnAttempt) -> Polled:
        return polled(await self._get(job.remote_id, on_attempt))

    async def _get(self, generation_id: str | None, on_attempt: OnAttempt | None
                   ) -> Answer[dict[str, Any]]:
        if remote_id(generation_id) is None:
            raise InvalidInput(f"not a Luma generation id: {str(generation_id)[:140]!r}")
        return await self.api.call("GET", f"/generations/{generation_id}",
                                   on_attempt=on_attempt)

    def open_result(self, job: Job, *, variant: str = "video", offset: int = 0
                    ) -> contextlib.AbstractAsyncContextManager[ContentStream]:
        url = (job.remote_handle or {}).get("result")
        if variant != "video" or not isinstance(url, str) or result_url(url) is None:
            raise InvalidInput(f"job {job.id} has no Luma {variant} to fetch")
        return self.api.open_stream(url, offset=offset)

    def result_path(self, job: Job, variant: str = "video") -> str:
        url = (job.remote_handle or {}).get("result")
        return httpx.URL(url).path if isinstance(url, str) and result_url(url) else "(result)"

    async def cancel(self, job: Job, *, on_attempt: OnAttempt | None = None) -> str:
        try:
            await self.api.call("DELETE", f"/generations/{job.remote_id}",
                                on_attempt=on_attempt)
        except ApiError as exc:
            if exc.http_status == 404:
                return "Luma no longer has the generation"
            raise
        return ("Luma has no cancel: sora deleted the generation (whether that stops one "
                "still dreaming, and its billing, is not documented)")

    async def lookup(self, remote: str, *, on_attempt: OnAttempt | None = None) -> Looked:
        answer = await self._get(remote, on_attempt)
        data = answer.value
        found = data.get("request")
        sent: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        params = {k: _scalar(v) for k, v in list(sent.items())[:50] if isinstance(k, str)
                  and len(k) <= 64 and _scalar(v) is not None
                  and k not in ("prompt", "model", "keyframes", "callback_url")}
        return Looked(remote, text(sent.get("prompt"), 32000) or "",
                      text(sent.get("model") or data.get("model"), 200) or "unknown",
                      polled(answer),
                      to_local(timestamp(data.get("created_at")), answer.server_skew),
                      params=params or None)

    async def find_created(self, request: CreateRequest, *, taken: Callable[[str], bool],
                           on_attempt: OnAttempt) -> Found:
        job = request.job
        assert job.create_started_at is not None
        # the runner's match request has no image bytes: an image here is a URL
        sent = {k: v for k, v in request_body(request).items() if k not in NOT_COMPARED}
        floor = job.create_started_at - 5.0  # a little slack for the two clocks
        candidates: list[tuple[float, str, Answer[dict[str, Any]]]] = []
        offset, seen = 0, 0
        for _ in range(MAX_LIST_PAGES):
            page = await self.api.call("GET", "/generations", on_attempt=on_attempt,
                                       params={"limit": str(PAGE), "offset": str(offset)})
            items = page.value.get("generations")
            if not isinstance(items, list):  # an answer that lists nothing proves nothing
                raise ApiError("Luma's list answer has no generations array",
                               http_status=200, request_id=page.request_id)
            floor_there = to_server(floor, page.server_skew)
            for item in items:
                if not isinstance(item, Mapping):
                    continue
                gid = remote_id(item.get("id"))
                created = timestamp(item.get("created_at"))
                if (gid is not None and created is not None and created >= floor_there
                        and not taken(gid) and matches(sent, item.get("request"))):
                    candidates.append((created, gid, Answer(dict(item), page.request_id,
                                                            None, page.server_skew)))
            seen += len(items)
            offset += len(items)
            more = page.value.get("has_more")
            if not items or more is False or (more is None and len(items) < PAGE):
                break
        else:
            if not candidates:
                return Found(undecided=(
                    f"Luma lists more than {seen} generations and none of the first matches "
                    "it; cannot tell whether the attempt made one, so it is not sent again "
                    "(look for it among your Luma generations before `sora retry`)"))
        if not candidates:
            return Found()  # the whole list was read: the attempt made no generation
        candidates.sort(key=lambda c: c[0])
        first = candidates[0]
        return Found(Created(first[1], None, polled(first[2])),
                     tuple(c[1] for c in candidates[1:]))


def _scalar(value: Any) -> str | int | float | bool | None:
    """An echoed field worth keeping as a param: a plain value, a string cleaned and
    bounded (the provider's values are never trusted)."""
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return text(value, 200) if isinstance(value, str) else None


def matches(sent: Mapping[str, Any], echoed: Any) -> bool:
    """The echoed request has the job's model and prompt, and no field sent that differs
    (a field the echo leaves out or nulls is not held against it)."""
    if not isinstance(echoed, Mapping):
        return False
    if echoed.get("model") != sent.get("model") or echoed.get("prompt") != sent.get("prompt"):
        return False
    return all(echoed.get(k) in (None, v) for k, v in sent.items())


def polled(answer: Answer[dict[str, Any]]) -> Polled:
    """A generation's state, what failed it, and where its video is."""
    data, rid = answer.value, answer.request_id
    status = text(data.get("state"), 64) or "unknown"
    state = STATES.get(status, RemoteState.RUNNING)  # an unknown word: keep polling
    if state is RemoteState.COMPLETED:
        assets = data.get("assets")
        url = result_url(assets.get("video")) if isinstance(assets, Mapping) else None
        if url is None:
            return Polled(RemoteState.FAILED, status, error=JobError(
                "no_video", "the generation completed, but has no assets.video URL",
                request_id=rid))
        return Polled(state, status, 100, result=url, request_id=rid)
    if state is RemoteState.FAILED:
        message = text(data.get("failure_reason")) or "the generation failed"
        return Polled(state, status, error=JobError("failed", message, request_id=rid))
    return Polled(state, status, request_id=rid)
