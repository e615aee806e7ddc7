"""The HTTP machinery every provider adapter shares: connection pools, one retry loop
with the SDK's rules (see retry.py), answers with their request id and clock skew,
and result streams that carry credentials only to the provider's own origin.

A provider's client subclasses `HttpApi` and says only what differs: its headers
(`common_headers`, `auth_headers`, called for every request, so a per-request token
such as a signed JWT or a refreshed OAuth token fits), the header that carries its
request id, errors it reports inside a 2xx answer (`answer_failure`: MiniMax's
`base_resp`), what its body says that others put in headers (`answer_headers`), and
its calls. Creates (``billed=True``: they start a billed job) are
only re-sent when the request provably never reached the server or was refused
without effect; any other failure raises AmbiguousCreate at once, for the runner
to reconcile (see outcome.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from sora_cli.errors import ApiError, InvalidInput, SoraError
from sora_cli.providers.answers import answer_meta, display_url
from sora_cli.providers.content import (
    ERROR_BODY_LIMIT,
    ContentStream,
    decoded_bytes,
    open_content,
    origin,
    read_capped,
)
from sora_cli.providers.endpoint import Body, Endpoint, Multipart, log_path, user_agent
from sora_cli.providers.limits import (
    JSON_ENCODINGS,
    MAX_JSON_BYTES,
    MAX_REDUCED_BYTES,
    request_deadline,
)
from sora_cli.providers.outcome import (
    Failure,
    deadline_failure,
    json_object,
    status_failure,
    success_failure,
    transport_failure,
)
from sora_cli.providers.retry import hint_too_long, retry_delay
from sora_cli.providers.wire import Answer, Attempt, OnAttempt

POOL_SIZE: Final = 8  # connections per httpx client (see HttpApi.__init__)
CONNECT_TIMEOUT: Final = 10.0
# Reads a success body as it streams and returns what stands for it (at most `limit`
# bytes) and whether that is whole: Vertex's operation answers carry the video itself,
# which is skipped and counted instead of read into memory (vertex/inline.py).
Reducer = Callable[[AsyncIterator[bytes], int], Awaitable[tuple[bytes, bool]]]


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


class HttpApi:
    """One provider API's connections and calls (subclass it; see the module docstring)."""

    REQUEST_ID_HEADER: str = "x-request-id"
    POLL_AFTER_HEADER: str = "openai-poll-after-ms"

    def __init__(
        self,
        settings: Endpoint,
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
        self._origin = origin(base)
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

    @property
    def base_url(self) -> str:
        """The base URL, fit for messages (no credentials, no query)."""
        return display_url(self._base)

    @property
    def request_timeout(self) -> float:
        """Seconds an answer may take (a download's body: see download.py)."""
        return self._settings.timeout

    # -- what a provider says about itself (override) -----------------------------------

    def common_headers(self) -> dict[str, str]:
        """Headers on every request, credentials aside."""
        return {"User-Agent": user_agent(), "Accept": "application/json",
                "Accept-Encoding": JSON_ENCODINGS}  # decoded by read_capped, under the cap

    async def auth_headers(self) -> dict[str, str]:
        """The credentials, asked for on every request (a per-request token fits here)."""
        return {"Authorization": f"Bearer {self._settings.api_key}"}

    def answer_failure(self, data: dict[str, Any], headers: httpx.Headers, *,
                       billed: bool) -> Failure | None:
        """An error the provider reports inside a 2xx JSON answer, with whether to try
        again (None: the answer is a success). The same rules as for HTTP errors apply:
        a create is retried only when the error says it made nothing."""
        return None

    def answer_headers(self, status: int, headers: httpx.Headers, raw: bytes
                       ) -> httpx.Headers:
        """The answer's headers as the shared code reads them, for a provider whose body
        says what others put in headers (its request id, that a 429 is not worth a
        retry): return them amended."""
        return headers

    # -- lifetime -------------------------------------------------------------------------

    async def __aenter__(self) -> HttpApi:
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
            headers=self.common_headers(),
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

    # -- where a request goes ---------------------------------------------------------

    def own_url(self, target: str) -> str:
        """A path under the base URL, or an absolute URL the provider handed back, which
        must be on the provider's own origin (the credentials go with it)."""
        if "://" not in target:
            return self._base + target
        try:
            url = httpx.URL(target)
        except (httpx.InvalidURL, TypeError):
            raise ApiError(f"unusable URL from the provider: {display_url(target)}") from None
        if origin(url) != self._origin or url.userinfo:
            raise ApiError(f"the provider handed back a URL on another origin "
                           f"({display_url(target)}); it is not followed")
        return str(url)

    def url(self, path: str) -> str:
        """The absolute URL of a path under the base URL."""
        return self._base + path

    def same_origin(self, target: str) -> bool:
        try:
            return origin(httpx.URL(target)) == self._origin
        except (httpx.InvalidURL, TypeError):
            return False

    # -- results ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def open_stream(self, url: str, *, offset: int = 0,
                          params: dict[str, str] | None = None,
                          method: str = "GET", json: dict[str, Any] | None = None,
                          ) -> AsyncIterator[ContentStream]:
        """One GET of a result's bytes (no retry here: download.py owns retrying); a
        result that only comes inside an API answer is read with that call's `method`
        and `json` body instead.

        Credentials go only to the provider's own origin: a result on a CDN or a signed
        storage URL is fetched without them, and so is any redirect off the origin."""
        headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
        if self.same_origin(url) or "://" not in url:
            headers.update(await self.auth_headers())
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
        target = self._base + url if "://" not in url else url
        async with self._download_slots, self._connection() as http:  # until the body is read
            response = await open_content(
                http, target, params=params or {}, headers=headers,
                base=self._base, read_timeout=self._settings.timeout,
                api_key=self._settings.api_key, method=method, json=json,
            )
            try:
                yield ContentStream(response, base=self._base,
                                    read_timeout=self._settings.timeout)
            finally:
                await response.aclose()

    # -- calls --------------------------------------------------------------------------

    def _answer(self, value: Any, headers: httpx.Headers) -> Answer[Any]:
        # never raises: an unparseable hint or date counts as absent (limits.py)
        request_id, poll_after_ms, server_skew = answer_meta(headers, self.POLL_AFTER_HEADER)
        return Answer(value=value, request_id=request_id, poll_after_ms=poll_after_ms,
                      server_skew=server_skew)

    async def call(self, method: str, target: str, *, body: Body | None = None,
                   params: dict[str, str] | None = None, on_attempt: OnAttempt | None = None,
                   billed: bool = False, reduce: Reducer | None = None
                   ) -> Answer[dict[str, Any]]:
        """A JSON call to a path under the base URL or a URL on the provider's origin
        (``reduce``: see `Reducer`)."""
        data, headers = await self._call(method, target, body=body, params=params,
                                         on_attempt=on_attempt, billed=billed, reduce=reduce)
        return self._answer(data, headers)

    async def _call(self, method: str, path: str, *, body: Body | None = None,
                    params: dict[str, str] | None = None, on_attempt: OnAttempt | None,
                    billed: bool = False, reduce: Reducer | None = None,
                    ) -> tuple[dict[str, Any], httpx.Headers]:
        url = self.own_url(path)
        numbers = itertools.count(1)

        async def once() -> tuple[dict[str, Any], httpx.Headers]:
            return await self._attempt(method, url, next(numbers), body, params,
                                       on_attempt, billed, reduce)

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

    async def _attempt(self, method: str, url: str, number: int, body: Body | None,
                       params: dict[str, str] | None, on_attempt: OnAttempt | None,
                       billed: bool, reduce: Reducer | None = None,
                       ) -> tuple[dict[str, Any], httpx.Headers]:
        failure: Failure | None
        path = log_path(url, self._base)
        deadline = request_deadline(self._settings.timeout, _body_size(body))
        try:
            status, headers, raw, complete = await self._exchange(method, url, body, params,
                                                                  deadline, reduce)
        except httpx.HTTPError as exc:
            failure = transport_failure(exc, billed=billed, attempts=number, base=self._base,
                                        read_timeout=self._settings.timeout)
        except TimeoutError:
            failure = deadline_failure(billed=billed, seconds=deadline, base=self._base)
        else:
            failure = (
                success_failure(status, headers, raw, complete, billed=billed,
                                limit=MAX_JSON_BYTES) if 200 <= status < 300
                else status_failure(status, headers, raw, billed=billed,
                                    api_key=self._settings.api_key))
            if failure is None:
                data = json_object(raw)
                failure = self.answer_failure(data, headers, billed=billed)
                if failure is None:
                    _report(on_attempt, Attempt(method, path, number, status,
                                                headers.get("x-request-id"), None, None))
                    return data, headers
        retry = (failure.retryable and number <= self._settings.max_retries
                 and not (failure.headers is not None and hint_too_long(failure.headers)))
        delay = retry_delay(failure.headers, number - 1, self._rng) if retry else None
        _report(on_attempt, Attempt(method, path, number, failure.http_status,
                                    failure.request_id, failure.short, delay))
        if delay is not None:
            raise _RetryLater(failure.error, delay)
        raise failure.error

    async def _exchange(self, method: str, url: str, body: Body | None,
                        params: dict[str, str] | None, deadline: float,
                        reduce: Reducer | None = None,
                        ) -> tuple[int, httpx.Headers, bytes, bool]:
        auth = await self.auth_headers()
        # The deadline runs once a connection is ours (waiting for one is not the
        # server's doing): per-read timeouts alone never end a drip-fed answer.
        async with self._connection() as http, asyncio.timeout(deadline):
            if isinstance(body, Multipart) and not body.files:
                # a form without a file is still multipart/form-data (httpx would
                # urlencode it): every field as a part without a file name
                parts = [(k, (None, v.encode())) for k, v in body.fields.items()]
                request = http.build_request(method, url, files=parts, params=params,
                                             headers=auth)
            elif isinstance(body, Multipart):  # rebuilt from bytes on every attempt
                request = http.build_request(method, url, data=body.fields,
                                             files=body.files, params=params, headers=auth)
            else:
                request = http.build_request(method, url, json=body, params=params,
                                             headers=auth)
            response = await http.send(request, stream=True)
            try:
                if reduce is not None and response.is_success:
                    # decoded here under a cap, as read_capped does (never httpx's
                    # whole-read inflation)
                    chunks = decoded_bytes(response, MAX_REDUCED_BYTES)
                    raw, complete = await reduce(chunks, MAX_JSON_BYTES)
                else:
                    limit = MAX_JSON_BYTES if response.is_success else ERROR_BODY_LIMIT
                    raw, complete = await read_capped(response, limit)
            finally:
                await response.aclose()
        headers = self.answer_headers(response.status_code,
                                      self._with_request_id(response.headers), raw)
        return response.status_code, headers, raw, complete

    def _with_request_id(self, headers: httpx.Headers) -> httpx.Headers:
        """The provider's request id under `x-request-id`, where the error and attempt
        code reads it, whatever header the provider sends it in."""
        name = self.REQUEST_ID_HEADER
        if name != "x-request-id" and name in headers:
            headers = httpx.Headers(headers)
            headers["x-request-id"] = headers[name]
        return headers


def _body_size(body: Body | None) -> int:
    """Bytes of the files a request uploads (its deadline grows with them)."""
    if isinstance(body, Multipart):
        return sum(len(data) for _, data, _ in body.files.values())
    return 0


def _report(on_attempt: OnAttempt | None, attempt: Attempt) -> None:
    if on_attempt is not None:
        on_attempt(attempt)

