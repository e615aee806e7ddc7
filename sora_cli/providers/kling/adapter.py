"""Kling's own API as a provider (see providers/base.py).

- Auth: `Authorization: Bearer <JWT>`, a token signed from the access key
  (KLING_ACCESS_KEY) and the secret key (KLING_SECRET_KEY; token.py), valid 30 minutes
  and signed afresh every 5; each is registered as a secret (masked wherever it shows).
- Create: `POST /v1/videos/text2video` (or `image2video` for a job with an image: `image`
  is a URL, or a local file's raw base64 without a `data:` prefix, up to 10 MB) with
  `model_name`, `prompt`, the model's fields and `external_task_id` = "sora-<job id>";
  the answer's `data.task_id` is the remote id, the endpoint is kept in the handle.
- Poll: `GET /v1/videos/{endpoint}/{task_id}`: `data.task_status` `submitted`,
  `processing`, `succeed` (the video: `data.task_result.videos[0].url`, on Kling's CDN,
  fetched without credentials) or `failed` (`task_status_msg`). No progress is
  documented. Videos "will be cleared after 30 days": the expiry is set from
  `created_at` (milliseconds).
- Every answer carries `{code, message, request_id}`: `code` 0 is success (an HTTP 200
  with another code is not), `request_id` is the request id (no header is documented).
  HTTP 429 with code 1100, 1101 or 1102 is the account's state (an account exception,
  arrears, an exhausted or expired resource pack), not a rate limit: never retried.
- An unanswered create is looked for in the task list (`GET /v1/videos/{endpoint}?
  pageNum=&pageSize=`) by its `external_task_id`, which the account keeps unique. The
  reference also says a task can be queried "by" its external id, but not how that is
  written on the wire; the list is documented, so it is what sora reads. Neither the
  list's order nor how soon a new task appears in it is documented: not finding the task
  is never proof, so the runner looks again until LIST_WAIT after the attempt, then
  fails the job with `create_unconfirmed` naming that id. It is never sent again.
- No cancel is documented.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job, JobError
from sora_cli.domain.providers import BUILTIN
from sora_cli.domain.text import register_secrets
from sora_cli.errors import AmbiguousCreate, ApiError, CannotSend, InvalidInput
from sora_cli.providers.base import Created, CreateRequest, Found, Polled, RemoteState
from sora_cli.providers.content import ContentStream
from sora_cli.providers.endpoint import Endpoint, EndpointSettings
from sora_cli.providers.http import HttpApi
from sora_cli.providers.inputs import remote_id, result_url, text
from sora_cli.providers.kling.token import kling_token
from sora_cli.providers.limits import load_json, plausible_time
from sora_cli.providers.outcome import ambiguous
from sora_cli.providers.wire import Answer, OnAttempt, to_local

STATES: Final = {"submitted": RemoteState.QUEUED, "processing": RemoteState.RUNNING,
                 "succeed": RemoteState.COMPLETED, "failed": RemoteState.FAILED}
RETENTION: Final = 30 * 86400.0  # "cleared after 30 days"
ACCOUNT_CODES: Final = {1100: "Kling reports an account exception",
                        1101: "the Kling account is in arrears",
                        1102: "the Kling resource package is used up or expired"}
REUSE: Final = 300.0  # seconds a request token is used (it is valid for LIFETIME)
LIST_WAIT: Final = 10 * 60.0  # how long after an unanswered create its task is looked for
PAGE_SIZE: Final = 500  # the list's largest page
MAX_LIST_PAGES: Final = 4
ENDPOINTS: Final = ("text2video", "image2video")


class KlingApi(HttpApi):
    def __init__(self, settings: Endpoint, secret_key: str, **http: Any) -> None:
        super().__init__(settings, **http)
        self._secret = secret_key
        self._token: tuple[str, float] | None = None  # the token and when it was signed

    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(time.time())}"}

    def token(self, now: float) -> str:
        """The request token: signed afresh every REUSE seconds (and after a clock jump
        back), each one registered as a secret, so a server echoing it gets it masked
        wherever sora stores or prints what it said."""
        if self._token is None or not 0 <= now - self._token[1] < REUSE:
            self._token = kling_token(self._settings.api_key, self._secret, now), now
            register_secrets([self._token[0]])
        return self._token[0]

    def answer_headers(self, status: int, headers: httpx.Headers, raw: bytes
                       ) -> httpx.Headers:
        """The body's request id as the request id; an account state is not retried."""
        if status < 400:
            return headers
        body = load_json(raw)  # None for anything unparseable, however deeply nested
        if not isinstance(body, dict):
            return headers
        headers = httpx.Headers(headers)
        if (rid := remote_id(body.get("request_id"))) is not None:
            headers["x-request-id"] = rid
        if status == 429 and body.get("code") in ACCOUNT_CODES:
            headers["x-should-retry"] = "false"
        return headers


def make(settings: Settings, **http: Any) -> KlingProvider:
    p = settings.provider("kling")
    assert p is not None
    return KlingProvider(KlingApi(EndpointSettings(
        p.base_url, p.api_key or "", settings.request_timeout, settings.max_retries,
        settings.ca_bundle), p.extra("secret_key") or "", **http))


class KlingProvider:
    name = "kling"
    capabilities = BUILTIN["kling"].capabilities

    def __init__(self, api: KlingApi) -> None:
        self.api = api

    async def aclose(self) -> None:
        await self.api.aclose()

    def where(self, job: Job) -> str:
        return f"POST {self.api.base_url}/v1/videos/{_endpoint(job)}"

    async def create(self, request: CreateRequest, *, on_attempt: OnAttempt) -> Created:
        job = request.job
        endpoint = _endpoint(job)
        try:
            answer = await self.api.call("POST", f"/v1/videos/{endpoint}",
                                         body=_body(request), on_attempt=on_attempt,
                                         billed=True)
        except ApiError as exc:
            raise _account(exc) from None
        # the task id first, before anything else the answer says (its code included):
        # once Kling has made the task, it is this job's
        data = answer.value.get("data")
        task_id = remote_id(data.get("task_id")) if isinstance(data, Mapping) else None
        if task_id is None or not isinstance(data, Mapping):
            _data(answer)  # a refusal in a 200 says so
            raise AmbiguousCreate(ambiguous("the answer has no usable task id"),
                                  http_status=200, request_id=_rid(answer))
        return Created(task_id, {"endpoint": endpoint}, polled(data, answer))

    async def poll(self, job: Job, *, on_attempt: OnAttempt) -> Polled:
        if remote_id(job.remote_id) is None:
            raise InvalidInput(f"not a Kling task id: {str(job.remote_id)[:140]!r}")
        answer = await self.api.call("GET", f"/v1/videos/{_endpoint(job)}/{job.remote_id}",
                                     on_attempt=on_attempt)
        data = _data(answer)
        if not isinstance(data, Mapping):
            raise ApiError("Kling's answer has no task", http_status=200,
                           request_id=_rid(answer))
        return polled(data, answer)

    def open_result(self, job: Job, *, variant: str = "video", offset: int = 0
                    ) -> contextlib.AbstractAsyncContextManager[ContentStream]:
        url = (job.remote_handle or {}).get("result")
        if variant != "video" or not isinstance(url, str) or result_url(url) is None:
            raise InvalidInput(f"job {job.id} has no Kling {variant} to fetch")
        return self.api.open_stream(url, offset=offset)

    def result_path(self, job: Job, variant: str = "video") -> str:
        url = (job.remote_handle or {}).get("result")
        return httpx.URL(url).path if isinstance(url, str) and result_url(url) else "(result)"

    async def find_created(self, request: CreateRequest, *, taken: Callable[[str], bool],
                           on_attempt: OnAttempt) -> Found:
        job = request.job
        assert job.create_started_at is not None
        endpoint, tag = _endpoint(job), external_id(job)
        for page in range(1, MAX_LIST_PAGES + 1):
            answer = await self.api.call(
                "GET", f"/v1/videos/{endpoint}",
                params={"pageNum": str(page), "pageSize": str(PAGE_SIZE)},
                on_attempt=on_attempt)
            items = _data(answer)
            items = [i for i in items if isinstance(i, Mapping)] \
                if isinstance(items, list) else []
            for item in items:
                info = item.get("task_info")
                task_id = remote_id(item.get("task_id"))
                if isinstance(info, Mapping) and info.get("external_task_id") == tag \
                        and task_id is not None and not taken(task_id):
                    return Found(Created(task_id, {"endpoint": endpoint},
                                         polled(item, answer)))
            if len(items) < PAGE_SIZE:
                break
        if time.time() < job.create_started_at + LIST_WAIT:
            return Found(later=True)
        return Found(undecided=(
            f"Kling listed no task with external_task_id {tag} in the {LIST_WAIT / 60:g} "
            f"minutes after the attempt; it was not sent again: look for it among your "
            f"Kling tasks before `sora retry {job.id}`"))


def external_id(job: Job) -> str:
    """The id sora gives a job's task at Kling (unique per account, as Kling asks)."""
    return f"sora-{job.id}"


def _endpoint(job: Job) -> str:
    handle = (job.remote_handle or {}).get("endpoint")
    if handle in ENDPOINTS:
        return str(handle)
    return "image2video" if job.image is not None else "text2video"


def _body(request: CreateRequest) -> dict[str, Any]:
    job = request.job
    body: dict[str, Any] = {"model_name": job.model, "prompt": job.prompt,
                            **(job.params or {}), "external_task_id": external_id(job)}
    image = request.image
    if image is not None and image.url is not None:
        body["image"] = image.url
    elif image is not None:
        limit = BUILTIN["kling"].inline_image_bytes
        if len(image.data) > limit:
            raise CannotSend("image_too_large", f"the image is {len(image.data)} bytes; "
                             f"Kling takes an image up to {limit}: give a URL instead")
        import base64

        body["image"] = base64.b64encode(image.data).decode()  # raw: no data: prefix
    return body


def _data(answer: Answer[dict[str, Any]]) -> Any:
    """The answer's `data`, once its `code` says success."""
    code = answer.value.get("code")
    if code not in (0, None):
        shown = text(code, 20) or "?"
        raise ApiError(text(answer.value.get("message")) or f"Kling answered code {shown}",
                       http_status=200, code=shown, request_id=_rid(answer))
    return answer.value.get("data")


def _rid(answer: Answer[dict[str, Any]]) -> str | None:
    return remote_id(answer.value.get("request_id")) or answer.request_id


def _account(exc: ApiError) -> ApiError:
    """An account state, said plainly (the job fails with it; nothing was made)."""
    try:
        code = int(exc.code or "")
    except ValueError:
        return exc
    if exc.http_status != 429 or code not in ACCOUNT_CODES:
        return exc
    return ApiError(f"{ACCOUNT_CODES[code]}: {exc.message}", http_status=429, code=str(code),
                    request_id=exc.request_id)


def polled(data: Mapping[str, Any], answer: Answer[dict[str, Any]]) -> Polled:
    """A task's state, what failed it, where its video is and when that goes."""
    rid = _rid(answer)
    status = text(data.get("task_status"), 64) or "unknown"
    state = STATES.get(status, RemoteState.RUNNING)
    created = data.get("created_at")  # milliseconds; a time no one could mean is absent
    seconds = plausible_time(created / 1000) if isinstance(created, int) \
        and not isinstance(created, bool) and 0 < created < 10**14 else None
    expires = to_local(seconds + RETENTION, answer.server_skew) if seconds else None
    if state is RemoteState.FAILED:
        message = text(data.get("task_status_msg")) or "the Kling task failed"
        return Polled(state, status, error=JobError("failed", message, request_id=rid))
    if state is not RemoteState.COMPLETED:
        return Polled(state, status, request_id=rid)
    result = data.get("task_result")
    videos = result.get("videos") if isinstance(result, Mapping) else None
    first = videos[0] if isinstance(videos, list) and videos else None
    url = result_url(first.get("url")) if isinstance(first, Mapping) else None
    if url is None:
        return Polled(RemoteState.FAILED, status, error=JobError(
            "no_video", "the task succeeded, but its result has no video URL",
            request_id=rid))
    return Polled(state, status, 100, result=url, expires_at=expires, request_id=rid)
