"""What one HTTP attempt's outcome means: the exception, and whether to try again.

Creates (``billed``: create and remix start a billed job) are only retried when the
request provably never reached the server (connect error, connect or pool timeout) or
was refused without effect (408, 409, 429, or a 4xx with ``x-should-retry: true``).
Anything else after the request may have arrived (a 5xx, a read timeout, a dropped
connection, an unreadable 2xx) becomes AmbiguousCreate, never a re-send.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from sora_cli.errors import AmbiguousCreate, ApiError, SoraError, TransportError
from sora_cli.providers.answers import (
    display_url,
    error_from_answer,
    provably_not_sent,
    request_id_of,
    transport_error,
    transport_reason,
    transport_retryable,
)
from sora_cli.providers.limits import load_json


@dataclass(frozen=True)
class Failure:
    error: SoraError
    retryable: bool
    short: str  # for the attempt log
    http_status: int | None = None
    request_id: str | None = None
    headers: Mapping[str, str] | None = None  # where the retry hints come from


def ambiguous(reason: str) -> str:
    return (f"the create request may have started a billed video ({reason}); "
            "it was not re-sent: look for it in the recent videos before submitting again")


def transport_failure(exc: httpx.HTTPError, *, billed: bool, attempts: int, base: str,
                      read_timeout: float) -> Failure:
    reason = transport_reason(exc, read_timeout=read_timeout)
    not_sent = provably_not_sent(exc)
    error = (AmbiguousCreate(ambiguous(reason)) if billed and not not_sent
             else transport_error(exc, base, read_timeout=read_timeout, attempts=attempts))
    error.__cause__ = exc
    return Failure(error, transport_retryable(exc) and (not billed or not_sent), reason)


def deadline_failure(*, billed: bool, seconds: float, base: str) -> Failure:
    """A request that got no complete answer within its total deadline (a server that
    drips its answer byte by byte gets past every per-read timeout)."""
    reason = f"no complete answer within {seconds:g} s"
    error: SoraError = (AmbiguousCreate(ambiguous(reason)) if billed
                        else TransportError(f"no usable answer from {display_url(base)}: "
                                            f"{reason}", sent=True))
    return Failure(error, not billed, reason)


def status_failure(status: int, headers: httpx.Headers, raw: bytes, *, billed: bool,
                   api_key: str) -> Failure:
    request_id = request_id_of(headers)
    if 300 <= status < 400:
        where = display_url(headers["location"]) if "location" in headers else "nowhere"
        redirect = ApiError(f"unexpected redirect to {where}; check the API base URL",
                            http_status=status, request_id=request_id)
        return Failure(redirect, False, f"HTTP {status}: redirect", status, request_id)
    api_error = error_from_answer(status, headers, raw, api_key=api_key)
    short = f"HTTP {status}: {api_error.message}"
    if billed and status >= 500:
        error = AmbiguousCreate(ambiguous(short), http_status=status, request_id=request_id)
        return Failure(error, False, short, status, request_id, headers)
    return Failure(api_error, api_error.retryable, short, status, request_id, headers)


def success_failure(status: int, headers: httpx.Headers, raw: bytes, complete: bool, *,
                    billed: bool, limit: int) -> Failure | None:
    """A failure for a 2xx answer that is too large or not a JSON object, else None."""
    if not complete:
        problem = f"response too large (over {limit // (1024 * 1024)} MiB)"
    elif status == 204 or not raw.strip() or json_object(raw, strict=True) is not None:
        return None
    else:
        problem = "unexpected answer: not a JSON object"
    request_id = request_id_of(headers)
    error: SoraError = ApiError(problem, http_status=status, request_id=request_id)
    if billed:
        error = AmbiguousCreate(ambiguous(problem), http_status=status, request_id=request_id)
    return Failure(error, False, problem, status, request_id)


def json_object(raw: bytes, *, strict: bool = False) -> Any:
    """The decoded JSON object; ``{}`` for an empty body (None instead when ``strict``)."""
    data = load_json(raw) if raw.strip() else {}  # None for junk and for RecursionError
    if isinstance(data, dict):
        return data
    return None if strict else {}
