"""Retry policy for the Videos API, as the official ``openai`` SDK applies it.

Pure functions over status codes and header mappings (no HTTP library here), so the
client (api.py) and the downloader (download.py) share one rule set:

- retry connection errors, timeouts, 408, 409, 429 and >= 500;
  ``x-should-retry: true|false`` overrides the status rule either way;
- honour ``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date) when the
  hint is within 0..120 s; a hint above 120 s means "do not retry now";
- otherwise back off ``min(0.5 * 2**n, 8)`` s times a jitter factor in (0.75, 1].
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from typing import Final

MAX_RETRIES_DEFAULT: Final = 5
MAX_HINT_SECONDS: Final = 120.0
INITIAL_DELAY: Final = 0.5
MAX_DELAY: Final = 8.0

_RETRY_STATUSES: Final = frozenset({408, 409, 429})
_INF_LITERALS: Final = frozenset({"inf", "+inf", "infinity", "+infinity"})


def should_retry_status(status: int, should_retry_header: str | None) -> bool:
    """True when an HTTP error answer with ``status`` is worth another attempt."""
    override = (should_retry_header or "").strip().lower()
    if override == "true":
        return True
    if override == "false":
        return False
    return status in _RETRY_STATUSES or status >= 500


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    # Plain dicts are case-sensitive; httpx.Headers is not.
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The server's raw retry hint in seconds (may be negative or above 120), or None.

    Same reading as the SDK: ``retry-after-ms`` first, then ``retry-after`` as a
    number (floats allowed), then ``retry-after`` as an HTTP date.
    """
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = _header(headers, name)
        if value is None:
            continue
        try:
            delay = float(value)
        except ValueError:
            continue
        if delay == math.inf and value.strip().lower() not in _INF_LITERALS:
            # A numeric overflow ("1e999") is an excessive delay, not a malformed value.
            return MAX_HINT_SECONDS + 1
        return delay / divisor
    return _date_hint(_header(headers, "retry-after"), now)


def _date_hint(value: str | None, now: float | None) -> float | None:
    if value is None:
        return None
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        when = email.utils.mktime_tz(parsed)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return float(when - (time.time() if now is None else now))


def hinted_delay(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The server's hint in seconds when it is usable (finite, 0..120 s), else None."""
    hint = retry_after_seconds(headers, now)
    if hint is None or not math.isfinite(hint) or not 0 <= hint <= MAX_HINT_SECONDS:
        return None
    return hint


def hint_too_long(headers: Mapping[str, str], now: float | None = None) -> bool:
    """True when the server asks for a wait above 120 s: do not retry now."""
    hint = retry_after_seconds(headers, now)
    return hint is not None and math.isfinite(hint) and hint > MAX_HINT_SECONDS


def backoff_delay(retry_number: int, rng: random.Random | None = None) -> float:
    """Delay before retry ``retry_number`` (0 for the first retry) without a server hint."""
    exponent = min(max(retry_number, 0), 1000)  # avoid overflow in pow, as the SDK does
    base = min(INITIAL_DELAY * 2.0**exponent, MAX_DELAY)
    draw = (rng or random).random()  # in [0, 1)
    return base * (1 - 0.25 * draw)  # jitter in (0.75, 1]


def retry_delay(
    headers: Mapping[str, str] | None,
    retry_number: int,
    rng: random.Random | None = None,
    now: float | None = None,
) -> float:
    """The wait before a retry: the server's hint when positive, else the backoff.

    A zero hint falls back to the backoff (as the SDK does), so a server answering
    ``retry-after: 0`` is not hammered.
    """
    hint = hinted_delay(headers, now) if headers is not None else None
    if hint is not None and hint > 0:
        return hint
    return backoff_delay(retry_number, rng)
