"""The byte stream of ``GET /videos/{id}/content``: extent parsing and redirects.

Redirects are followed by hand so the credentials never leave the API's origin:
a hop to another scheme, host or port (a CDN, a signed storage URL) goes without
``Authorization``/``api-key`` and the OpenAI-Organization/Project headers.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, Final

import httpx

from sora_cli.errors import ApiError
from sora_cli.providers.answers import display_url, error_from_answer, transport_error

MAX_REDIRECTS: Final = 5
ERROR_BODY_LIMIT: Final = 64 * 1024
CREDENTIAL_HEADERS: Final = ("authorization", "api-key", "openai-organization", "openai-project")
_CONTENT_RANGE: Final = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", re.IGNORECASE)


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the default port made explicit."""
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


async def read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body and whether that was the whole body.

    Never buffers more than ``limit`` (+ one network chunk): a Content-Length above
    the limit is refused before reading, and the running count stops the read.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return b"", False
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) > limit:
            return bytes(buffer[:limit]), False
    return bytes(buffer), True


class ContentStream:
    """An open content answer: where it starts, how big the whole file is, its bytes."""

    def __init__(self, response: httpx.Response, *, base: str, read_timeout: float) -> None:
        self._response = response
        self._base = base
        self._read_timeout = read_timeout
        self.status: int = response.status_code
        self.request_id: str | None = response.headers.get("x-request-id")
        self.start, self.total_size = _extent(response)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in network-sized pieces; transport failures raise TransportError."""
        try:
            async for chunk in self._response.aiter_bytes():
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
    declared = headers.get("content-length", "")
    if encoding not in ("", "identity") or not declared.isdigit():
        return 0, None  # a decoded body's size is unknown up front
    return 0, int(declared)


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
    target = httpx.URL(url, params=params)
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
