"""The async client of the Videos API (OpenAI contract; Azure v1 and gateways too).

Every call goes through one retry loop with the SDK's rules (see retry.py). Creates
(``create`` and ``remix``, which both start a billed job) are only re-sent when the
request provably never reached the server or was refused without effect; any other
failure raises AmbiguousCreate at once, for the caller to reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import importlib.metadata
import itertools
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from sora_cli.errors import AmbiguousCreate, ApiError, InvalidInput, SoraError
from sora_cli.providers.answers import display_url
from sora_cli.providers.content import ERROR_BODY_LIMIT, ContentStream, open_content, read_capped
from sora_cli.providers.openai.types import ApiSettings, Video, VideoPage, valid_video_id
from sora_cli.providers.outcome import (
    Failure,
    ambiguous,
    json_object,
    status_failure,
    success_failure,
    transport_failure,
)
from sora_cli.providers.retry import hint_too_long, retry_delay
from sora_cli.providers.wire import Answer, Attempt, OnAttempt

__all__ = [
    "Answer", "ApiSettings", "Attempt", "ContentStream", "OnAttempt", "Video",
    "VideoPage", "VideosClient", "valid_video_id",
]

POOL_SIZE: Final = 8  # connections per httpx client (see VideosClient.__init__)
MAX_JSON_BYTES: Final = 10 * 1024 * 1024
CONNECT_TIMEOUT: Final = 10.0
ImageFile = tuple[str, bytes, str]  # file name, bytes, content type


@dataclass(frozen=True)
class Multipart:
    """A multipart/form-data body: plain fields and file parts."""

    fields: dict[str, str]
    files: dict[str, ImageFile]


Body = dict[str, Any] | Multipart


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("sora-cli")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"sora-cli/{version}"


class _RetryLater(Exception):
    def __init__(self, error: SoraError, delay: float) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    return exc.delay if isinstance(exc, _RetryLater) else 0.0


@dataclass
class _Pool:
    http: httpx.AsyncClient
    busy: int = 0


class VideosClient:
    def __init__(
        self,
        settings: ApiSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        max_connections: int = 64,
    ) -> None:
        self._settings = settings
        self._base = settings.base_url.rstrip("/")
        base = httpx.URL(self._base) if "://" in self._base else None
        if base is None or base.scheme not in ("http", "https") or not base.host:
            raise InvalidInput(f"invalid API base URL {display_url(self._base)!r}")
        self._sleep = sleep
        self._rng = rng
        self._transport = transport
        # Made once (it reads the CA file), shared by the pools; a bad CA bundle fails here.
        self._tls = httpx.create_ssl_context(self._verify()) if transport is None else True
        # Requests wait for a connection here, not in httpcore's pool, whose bookkeeping
        # costs O(connections^2) per request plus a poll(2) per idle connection: hundreds
        # of jobs' polls would pay that on every request. So the connections are split
        # into small pools (one httpx client each, opened as the load needs them), a
        # request takes the least busy one, and downloads, which hold a connection for
        # long, never take the last few.
        self._slots = asyncio.Semaphore(max_connections)
        self._download_slots = asyncio.Semaphore(max(1, max_connections - 4))
        self._pools: list[_Pool] = []
        self._max_pools = -(-max_connections // POOL_SIZE)

    def _verify(self) -> ssl.SSLContext | bool:
        path = self._settings.ca_bundle
        if path is None:
            return True  # httpx default: certifi, or SSL_CERT_FILE/SSL_CERT_DIR via trust_env
        try:
            return ssl.create_default_context(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise InvalidInput(f"cannot use CA bundle {path}: {reason}") from exc

    def _common_headers(self) -> dict[str, str]:
        headers = {"User-Agent": _user_agent(), "Accept": "application/json"}
        if self._settings.organization:
            headers["OpenAI-Organization"] = self._settings.organization
        if self._settings.project:
            headers["OpenAI-Project"] = self._settings.project
        return headers

    def _auth_headers(self) -> dict[str, str]:
        if self._settings.auth_style == "azure":
            return {"api-key": self._settings.api_key}
        return {"Authorization": f"Bearer {self._settings.api_key}"}

    async def __aenter__(self) -> VideosClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.http.aclose()

    def _new_pool(self) -> _Pool:
        http = httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(self._settings.timeout, connect=CONNECT_TIMEOUT),
            limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
            follow_redirects=False,
            headers=self._common_headers(),
            verify=self._tls,
            trust_env=self._transport is None,  # env proxies would bypass an injected one
        )
        self._pools.append(_Pool(http))
        return self._pools[-1]

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[httpx.AsyncClient]:
        """A client of the least busy pool, for one request (a new pool when all are full)."""
        async with self._slots:
            pool = min(self._pools, key=lambda p: p.busy, default=None)
            if pool is None or (pool.busy >= POOL_SIZE and len(self._pools) < self._max_pools):
                pool = self._new_pool()
            pool.busy += 1
            try:
                yield pool.http
            finally:
                pool.busy -= 1

    # -- public calls ---------------------------------------------------------------

    async def create(self, *, prompt: str, model: str, size: str, seconds: int,
                     image_url: str | None = None, image_file: ImageFile | None = None,
                     on_attempt: OnAttempt | None = None) -> Answer[Video]:
        """Start a video. An image reference goes as a multipart file part
        (``image_file``: name, bytes, content type) or as the JSON object form
        ``input_reference: {"image_url": ...}``."""
        if not prompt.strip():
            raise InvalidInput("the prompt is empty")
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise InvalidInput(f"seconds must be a positive whole number, not {seconds!r}")
        fields = {"prompt": prompt, "model": model, "size": size, "seconds": str(seconds)}
        body: Body = fields
        if image_file is not None:
            body = Multipart(fields, {"input_reference": image_file})
        elif image_url is not None:
            body = {**fields, "input_reference": {"image_url": image_url}}
        return await self._video("POST", "/videos", body=body, on_attempt=on_attempt, billed=True)

    async def retrieve(self, video_id: str, *, on_attempt: OnAttempt | None = None
                       ) -> Answer[Video]:
        return await self._video("GET", f"/videos/{_checked(video_id)}", on_attempt=on_attempt)

    async def remix(self, video_id: str, prompt: str, *, on_attempt: OnAttempt | None = None
                    ) -> Answer[Video]:
        if not prompt.strip():
            raise InvalidInput("the prompt is empty")
        path = f"/videos/{_checked(video_id)}/remix"
        return await self._video("POST", path, body={"prompt": prompt},
                                 on_attempt=on_attempt, billed=True)

    async def list_page(self, *, limit: int = 100, order: str = "desc", after: str | None = None,
                        on_attempt: OnAttempt | None = None) -> Answer[VideoPage]:
        if not 0 <= limit <= 100 or order not in ("asc", "desc"):
            raise InvalidInput("list needs 0 <= limit <= 100 and order 'asc' or 'desc'")
        params = {"limit": str(limit), "order": order} | ({"after": after} if after else {})
        data, headers = await self._call("GET", "/videos", params=params, on_attempt=on_attempt)
        return self._answer(VideoPage.from_json(data), headers)

    async def iter_recent(self, *, max_pages: int = 10, on_attempt: OnAttempt | None = None
                          ) -> AsyncIterator[Video]:
        """Videos newest first, following the ``after`` cursor for up to ``max_pages`` pages."""
        after: str | None = None
        for _ in range(max_pages):
            page = (await self.list_page(after=after, on_attempt=on_attempt)).value
            for video in page.data:
                yield video
            cursor = page.last_id or (page.data[-1].id if page.data else None)
            if not page.has_more or cursor is None or cursor == after:
                return
            after = cursor

    async def delete(self, video_id: str, *, on_attempt: OnAttempt | None = None
                     ) -> Answer[bool]:
        path = f"/videos/{_checked(video_id)}"
        data, headers = await self._call("DELETE", path, on_attempt=on_attempt)
        return self._answer(bool(data.get("deleted", True)), headers)

    def stream_content(self, video_id: str, *, variant: str = "video", offset: int = 0
                       ) -> contextlib.AbstractAsyncContextManager[ContentStream]:
        """One GET of the bytes (no retry here: download.py owns retrying downloads)."""
        path = f"/videos/{_checked(video_id)}/content"
        if not valid_video_id(variant) or offset < 0:
            raise InvalidInput(f"invalid content variant {variant!r} or offset {offset}")
        return self._content(path, variant, offset)

    # -- machinery --------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _content(self, path: str, variant: str, offset: int
                       ) -> AsyncIterator[ContentStream]:
        headers = {"Accept": "*/*", "Accept-Encoding": "identity", **self._auth_headers()}
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
        async with self._download_slots, self._connection() as http:  # until the body is read
            response = await open_content(
                http, self._base + path, params={"variant": variant}, headers=headers,
                base=self._base, read_timeout=self._settings.timeout,
                api_key=self._settings.api_key,
            )
            try:
                yield ContentStream(response, base=self._base,
                                    read_timeout=self._settings.timeout)
            finally:
                await response.aclose()

    def _answer(self, value: Any, headers: httpx.Headers) -> Answer[Any]:
        poll = headers.get("openai-poll-after-ms", "").strip()
        return Answer(value=value, request_id=headers.get("x-request-id"),
                      poll_after_ms=int(poll) if poll.isdigit() else None,
                      server_skew=_skew(headers.get("date")))

    async def _video(self, method: str, path: str, *, body: Body | None = None,
                     on_attempt: OnAttempt | None, billed: bool = False) -> Answer[Video]:
        data, headers = await self._call(method, path, body=body, on_attempt=on_attempt,
                                         billed=billed)
        try:
            video = Video.from_json(data)
        except ApiError as exc:
            if billed:  # a success answer (2xx) that describes no usable video
                raise AmbiguousCreate(ambiguous(exc.message), http_status=200,
                                      request_id=headers.get("x-request-id")) from exc
            raise
        return self._answer(video, headers)

    async def _call(self, method: str, path: str, *, body: Body | None = None,
                    params: dict[str, str] | None = None, on_attempt: OnAttempt | None,
                    billed: bool = False) -> tuple[dict[str, Any], httpx.Headers]:
        numbers = itertools.count(1)

        async def once() -> tuple[dict[str, Any], httpx.Headers]:
            return await self._attempt(method, path, next(numbers), body, params,
                                       on_attempt, billed)

        try:  # the usual case, one attempt, without building the retry machinery
            return await once()
        except _RetryLater as first:
            await self._sleep(first.delay)
        retrying = AsyncRetrying(  # the attempts left after the first
            retry=retry_if_exception_type(_RetryLater), wait=_wait, sleep=self._sleep,
            stop=stop_after_attempt(self._settings.max_retries), reraise=True,
        )
        try:
            result: tuple[dict[str, Any], httpx.Headers] = await retrying(once)
        except _RetryLater as exc:  # unreachable: _attempt stops before the bound
            raise exc.error from exc
        return result

    async def _attempt(self, method: str, path: str, number: int, body: Body | None,
                       params: dict[str, str] | None, on_attempt: OnAttempt | None,
                       billed: bool) -> tuple[dict[str, Any], httpx.Headers]:
        failure: Failure | None
        try:
            status, headers, raw, complete = await self._exchange(method, path, body, params)
        except httpx.HTTPError as exc:
            failure = transport_failure(exc, billed=billed, attempts=number, base=self._base,
                                        read_timeout=self._settings.timeout)
        else:
            failure = (
                success_failure(status, headers, raw, complete, billed=billed,
                                limit=MAX_JSON_BYTES) if 200 <= status < 300
                else status_failure(status, headers, raw, billed=billed,
                                    api_key=self._settings.api_key))
            if failure is None:
                _report(on_attempt, Attempt(method, path, number, status,
                                            headers.get("x-request-id"), None, None))
                return json_object(raw), headers
        retry = (failure.retryable and number <= self._settings.max_retries
                 and not (failure.headers is not None and hint_too_long(failure.headers)))
        delay = retry_delay(failure.headers, number - 1, self._rng) if retry else None
        _report(on_attempt, Attempt(method, path, number, failure.http_status,
                                    failure.request_id, failure.short, delay))
        if delay is not None:
            raise _RetryLater(failure.error, delay)
        raise failure.error

    async def _exchange(self, method: str, path: str, body: Body | None,
                        params: dict[str, str] | None
                        ) -> tuple[int, httpx.Headers, bytes, bool]:
        async with self._connection() as http:
            if isinstance(body, Multipart):  # rebuilt from bytes on every attempt
                request = http.build_request(method, self._base + path, data=body.fields,
                                             files=body.files, params=params,
                                             headers=self._auth_headers())
            else:
                request = http.build_request(method, self._base + path, json=body,
                                             params=params, headers=self._auth_headers())
            response = await http.send(request, stream=True)
            try:
                limit = MAX_JSON_BYTES if response.is_success else ERROR_BODY_LIMIT
                raw, complete = await read_capped(response, limit)
            finally:
                await response.aclose()
        return response.status_code, response.headers, raw, complete


def _skew(date: str | None) -> float | None:
    """The server's clock minus ours, from its Date header (None when it sent none)."""
    if not date:
        return None
    try:
        when = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return when - time.time()


def _checked(video_id: str) -> str:
    if not valid_video_id(video_id):
        raise InvalidInput(f"invalid video id {video_id[:140]!r}")
    return video_id


def _report(on_attempt: OnAttempt | None, attempt: Attempt) -> None:
    if on_attempt is not None:
        on_attempt(attempt)
