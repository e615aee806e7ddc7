"""Turning HTTP error answers and transport failures into sora's exceptions.

One place decides what an error says, whether it may be retried, and that no
message ever carries the API key or credentials embedded in a URL.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any, Final

import httpx

from sora_cli.domain.text import redact, scrub, scrub_or_none
from sora_cli.errors import ApiError, AuthError, TransportError
from sora_cli.providers.limits import ascii_int, bounded_skew, load_json
from sora_cli.providers.retry import retry_after_seconds, should_retry_status

_SNIPPET: Final = 200
_NOT_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)
_PERMANENT: Final = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


def display_url(url: str | httpx.URL) -> str:
    """``scheme://host[:port]/path`` without credentials or query string."""
    try:
        parsed = httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError):
        return "<invalid URL>"
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}".rstrip("/")


def _text(value: Any, limit: int = 2000) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return scrub_or_none(value, limit)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return scrub_or_none(value, limit)
    return None


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The answer's request id, scrubbed and bounded (it is stored and printed)."""
    return scrub_or_none(headers.get("x-request-id"), 200)


def answer_meta(headers: Mapping[str, str], poll_header: str = "openai-poll-after-ms"
                ) -> tuple[str | None, int | None, float | None]:
    """What a success answer's headers say: (request id, poll hint in ms, server clock
    skew). Each unparseable value counts as absent: it never fails the answer."""
    return (request_id_of(headers), ascii_int(headers.get(poll_header)),
            server_skew(headers.get("date")))


def server_skew(date: str | None) -> float | None:
    """The server's clock minus ours, from its Date header; None when it sent none, an
    unreadable one, or one too far from ours to believe (see limits.bounded_skew)."""
    if not date:
        return None
    try:
        when = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError, OSError):
        return None
    return bounded_skew(when - time.time())


def parse_error_envelope(body: bytes) -> tuple[str | None, str | None]:
    """(message, code) from ``{"error": {"message", "type", "param", "code"}}``.

    Tolerates the shapes gateways send instead: ``{"error": "text"}``,
    ``{"message": ...}``, ``{"detail": ...}``, plain text, HTML and junk.
    """
    data = load_json(body.decode("utf-8", errors="replace"))
    if data is None and body.strip()[:1] not in (b"{", b"["):
        return _plain_text(body), None
    if not isinstance(data, dict):
        return None, None  # JSON of another shape, or nested too deep to read
    inner = data.get("error")
    if isinstance(inner, dict):
        message, code = _text(inner.get("message")), _text(inner.get("code"), 100)
        return message, code or (None if message else _text(inner.get("type"), 100))
    if isinstance(inner, str):
        return _text(inner), None
    detail = data.get("detail")
    if isinstance(detail, list):  # validation errors (fal): [{"loc": [...], "msg": ...}]
        first = detail[0] if detail and isinstance(detail[0], dict) else {}
        return _validation_text(detail), _text(data.get("error_type")) or _text(first.get("type"))
    status = data.get("status")  # fal's cancel: {"status": "ALREADY_COMPLETED"}
    return (_text(data.get("message")) or _text(detail)
            or (_text(status) if isinstance(status, str) else None),
            _text(data.get("code"), 100) or _text(data.get("error_type"), 100))


def _validation_text(items: list[Any]) -> str | None:
    """`field: message; ...` for a list of validation errors."""
    parts: list[str] = []
    for item in items[:5]:
        if not isinstance(item, dict):
            continue
        loc = item.get("loc")
        where = loc[-1] if isinstance(loc, list) and loc else None
        msg = _text(item.get("msg"))
        if msg:
            parts.append(f"{_text(where)}: {msg}" if _text(where) else msg)
    text = _text("; ".join(parts))
    return text[:_SNIPPET * 2] if text else None


def _plain_text(body: bytes) -> str | None:
    text = scrub(body.decode("utf-8", errors="replace"), None).strip()
    if not text or text.startswith("<") or "\n" in text[:_SNIPPET]:
        return None  # HTML pages and multi-line dumps say nothing useful in one line
    return text[:_SNIPPET] + ("..." if len(text) > _SNIPPET else "")


def _default_message(status: int) -> str:
    if status == 401:
        return "the API key was rejected"
    if status == 403:
        return "access denied for this API key"
    if status == 404:
        return "not found"
    phrase = httpx.codes.get_reason_phrase(status)
    return f"the server answered {phrase or 'an error'}"


def error_from_answer(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    api_key: str | None,
    now: float | None = None,
) -> ApiError:
    """The ApiError (AuthError for 401/403) for an HTTP error answer."""
    message, code = parse_error_envelope(body)
    if code is None and status == 404:
        code = "not_found"
    hint = retry_after_seconds(headers, now)
    retry_after = hint if hint is not None and math.isfinite(hint) and hint >= 0 else None
    cls = AuthError if status in (401, 403) else ApiError
    return cls(
        redact(message or _default_message(status), [api_key]),  # scrubbed: every secret
        http_status=status,
        code=code,
        request_id=request_id_of(headers),
        retryable=should_retry_status(status, headers.get("x-should-retry")),
        retry_after=retry_after,
    )


def provably_not_sent(exc: httpx.HTTPError) -> bool:
    """True when the request cannot have reached the server (safe to re-send anything)."""
    return isinstance(exc, _NOT_SENT)


def transport_retryable(exc: BaseException | None) -> bool:
    """True when another attempt after this transport failure may succeed."""
    if isinstance(exc, TransportError):
        exc = exc.__cause__
    if not isinstance(exc, httpx.TransportError) or isinstance(exc, _PERMANENT):
        return False
    return not _is_certificate_failure(exc)


def _is_certificate_failure(exc: httpx.HTTPError) -> bool:
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def transport_reason(exc: httpx.HTTPError, *, read_timeout: float) -> str:
    """A short lower-case reason for a transport failure, without headers or keys."""
    detail = str(exc).lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, httpx.ReadTimeout):
        return f"no answer within {read_timeout:g} s (read timeout)"
    if isinstance(exc, httpx.WriteTimeout):
        return "timed out while sending the request"
    if isinstance(exc, httpx.PoolTimeout):
        return "no free connection (pool timeout)"
    if _is_certificate_failure(exc):
        return "TLS certificate verification failed (set a CA bundle or SSL_CERT_FILE)"
    if isinstance(exc, httpx.ConnectError):
        if "refused" in detail:
            return "connection refused"
        if "name" in detail and ("resolution" in detail or "known" in detail):
            return "host name could not be resolved"
        return "connection failed"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection"
    if isinstance(exc, httpx.ReadError):
        return "the connection dropped while reading the answer"
    if isinstance(exc, httpx.WriteError):
        return "the connection dropped while sending the request"
    if isinstance(exc, httpx.ProxyError):
        return "the proxy refused the connection"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "unsupported URL scheme"
    return type(exc).__name__


def transport_error(
    exc: httpx.HTTPError, base: str, *, read_timeout: float, attempts: int = 1
) -> TransportError:
    """The TransportError for ``exc`` (chain it with ``raise ... from exc``)."""
    sent = not provably_not_sent(exc)
    verb = "no usable answer from" if sent else "cannot reach"
    tail = f" (after {attempts} attempts)" if attempts > 1 else ""
    reason = transport_reason(exc, read_timeout=read_timeout)
    return TransportError(f"{verb} {display_url(base)}: {reason}{tail}", sent=sent)
