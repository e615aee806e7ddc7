"""The byte stream of ``GET /videos/{id}/content``: extent parsing and redirects.

Redirects are followed by hand so the credentials never leave the API's origin:
a hop to another scheme, host or port (a CDN, a signed storage URL) goes without
``Authorization``/``api-key`` and the OpenAI-Organization/Project headers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any, Final

import httpx

from sora_cli.errors import ApiError
from sora_cli.providers.answers import display_url, error_from_answer, transport_error
from sora_cli.providers.limits import (
    MIN_BODY_BYTES,
    MIN_TRANSFER_RATE,
    CappedDecoder,
    ascii_int,
)

MAX_REDIRECTS: Final = 5
ERROR_BODY_LIMIT: Final = 64 * 1024
CREDENTIAL_HEADERS: Final = ("authorization", "api-key", "openai-organization", "openai-project")
_CONTENT_RANGE: Final = re.compile(r"\s*bytes\s+([0-9]{1,15})-([0-9]{1,15})/([0-9]{1,15}|\*)\s*",
                                   re.IGNORECASE)


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the default port made explicit."""
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


async def raw_bytes(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as it came over the wire (Content-Encoding not undone). An answer built
    in memory (already read, as mock transports make them) yields its byte stream."""
    if not response.is_stream_consumed:
        async for chunk in response.aiter_raw():
            yield chunk
        return
    stream = response.stream
    if isinstance(stream, httpx.AsyncByteStream):
        async for chunk in stream:
            yield chunk


async def read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body, decoded, and whether that was the whole body.

    Never holds more than ``limit`` (+ one network chunk): a Content-Length above the
    limit is refused before reading, and the body is decoded here, from the raw bytes,
    counting decompressed bytes as they come (httpx would inflate a whole network read
    of a gzip bomb at once, hundreds of MB, before any count could stop it).
    """
    declared = response.headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        return b"", False
    decoder = CappedDecoder(response.headers.get("content-encoding"), limit)
    buffer = bytearray()
    async for chunk in raw_bytes(response):
        buffer += decoder.feed(chunk)
        if decoder.over:
            return bytes(buffer[:limit]), False
    return bytes(buffer), True


async def decoded_bytes(response: httpx.Response, cap: int) -> AsyncIterator[bytes]:
    """The body decoded as it comes, a network chunk at a time, ending after ``cap``
    decompressed bytes (the reader then sees an incomplete body)."""
    decoder = CappedDecoder(response.headers.get("content-encoding"), cap)
    async for chunk in raw_bytes(response):
        out = decoder.feed(chunk)
        if out:
            yield out
        if decoder.over:
            return


def check_identity(response: httpx.Response, variant: str) -> None:
    """Refuse a body encoded although identity was asked for (saved as sent it would not
    be the file, decoded it could be a bomb)."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ApiError(f"the server sent the {variant} {encoding[:40]}-encoded although it "
                       "was asked for as it is (identity); not saved", http_status=
                       response.status_code, code="bad_content",
                       request_id=response.headers.get("x-request-id"), retryable=True)


def check_video_answer(response: httpx.Response, variant: str) -> None:
    """Refuse a success answer that cannot be the file asked for: a body encoded
    although identity was asked for (saved as sent it would not be a video, decoded it
    could be a bomb), or an HTML page, JSON or text (a proxy's error page on a 200)."""
    check_identity(response, variant)
    headers = response.headers
    request_id = headers.get("x-request-id")
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    main, _, sub = kind.partition("/")
    if main == "text" or any(word in sub for word in ("json", "html", "xml")):
        raise ApiError(f"the server answered {kind[:60]} instead of the {variant}; not "
                       "saved", http_status=response.status_code, code="bad_content",
                       request_id=request_id, retryable=True)


def check_body_size(size: int, variant: str) -> None:
    """Refuse a body too small to be the file asked for (an empty 200, say)."""
    least = MIN_BODY_BYTES.get(variant, 1)
    if size < least:
        raise ApiError(f"the server sent {size} bytes for the {variant} (at least {least} "
                       "expected); not saved", code="bad_content", retryable=True)


class ContentStream:
    """An open content answer: where it starts, how big the whole file is, its bytes."""

    def __init__(self, response: httpx.Response, *, base: str, read_timeout: float) -> None:
        self._response = response
        self._base = base
        self._read_timeout = read_timeout
        self.status: int = response.status_code
        self.request_id: str | None = response.headers.get("x-request-id")
        self.start, self.total_size = _extent(response)

    def check(self, variant: str) -> None:
        """ApiError (bad_content) unless this answer can be the `variant` asked for."""
        check_video_answer(self._response, variant)

    def check_identity(self, variant: str) -> None:
        """ApiError (bad_content) when the body is encoded (an answer that carries the
        file inside it, as Vertex's operation does, is read as sent)."""
        check_identity(self._response, variant)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as sent (never decoded: see `check_video_answer`), in network-sized
        pieces; transport failures raise TransportError. The bytes must keep up
        MIN_TRANSFER_RATE after the read timeout, counted here, on the wire (TimeoutError
        otherwise): a reader that yields fewer bytes than it reads (Vertex's inline video
        inside a JSON answer) is held to the server's pace, not its own."""
        loop = asyncio.get_running_loop()
        started, received = loop.time(), 0
        try:
            async for chunk in raw_bytes(self._response):
                received += len(chunk)
                if loop.time() - started > self._read_timeout + received / MIN_TRANSFER_RATE:
                    raise TimeoutError(f"the server sent the answer slower than "
                                       f"{MIN_TRANSFER_RATE >> 10} KiB/s")
                yield chunk
        except httpx.TransportError as exc:
            raise transport_error(exc, self._base, read_timeout=self._read_timeout) from exc


def _extent(response: httpx.Response) -> tuple[int, int | None]:
    """(first byte offset served, full size of the file or None)."""
    headers = response.headers
    if response.status_code == 206:
        match = _CONTENT_RANGE.fullmatch(headers.get("content-range", ""))
        if match is None:
            raise ApiError(
                "the server sent a partial answer without a valid Content-Range",
                http_status=206, code="bad_range", request_id=headers.get("x-request-id"),
            )
        total = match.group(3)
        return int(match.group(1)), None if total == "*" else int(total)
    encoding = headers.get("content-encoding", "identity").strip().lower()
    declared = ascii_int(headers.get("content-length"))
    if encoding not in ("", "identity"):
        return 0, None  # refused by check_video_answer
    return 0, declared


async def open_content(
    http: httpx.AsyncClient,
    url: str,
    *,
    params: dict[str, str],
    headers: dict[str, str],
    base: str,
    read_timeout: float,
    api_key: str,
    method: str = "GET",
    json: dict[str, Any] | None = None,
) -> httpx.Response:
    """Send the GET (or ``method`` with a ``json`` body: a result inside an API answer),
    following up to MAX_REDIRECTS redirects; returns a 2xx streaming answer.

    The caller closes the answer. Error answers raise ApiError/AuthError.
    """
    base_origin = origin(httpx.URL(base))
    # params replace a URL's own query, and a signed URL's query is its signature
    target = httpx.URL(url, params=params) if params else httpx.URL(url)
    send_headers = dict(headers)
    for _hop in range(MAX_REDIRECTS + 1):
        if origin(target) != base_origin:
            send_headers = {k: v for k, v in send_headers.items()
                            if k.lower() not in CREDENTIAL_HEADERS}
        request = http.build_request(method, target, headers=send_headers, json=json)
        for name in CREDENTIAL_HEADERS:
            if name not in {k.lower() for k in send_headers}:
                request.headers.pop(name, None)  # client defaults must not leak either
        try:
            response = await http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc, base, read_timeout=read_timeout) from exc
        if response.is_success:
            return response
        try:
            location = response.headers.get("location")
            if response.is_redirect and location:
                target = response.url.join(location)
                continue
            body, _ = await read_capped(response, ERROR_BODY_LIMIT)
        except httpx.HTTPError as exc:
            raise transport_error(exc, base, read_timeout=read_timeout) from exc
        finally:
            await response.aclose()
        raise error_from_answer(response.status_code, response.headers, body, api_key=api_key)
    raise ApiError(f"too many redirects (more than {MAX_REDIRECTS}) for {display_url(url)}")
