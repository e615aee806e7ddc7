"""What the store accepts: the last gate before anything is written.

Every text column that may carry what a server or an exception said goes through
`domain.text.scrub` (secrets masked, control characters out, bounded), and every
number is clamped to what the readers can render (a timestamp `datetime` accepts, a
progress of 0..100, an HTTP status), so that no command ever crashes on a stored job.
A value that cannot be made sane is stored as NULL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from sora_cli.domain.text import scrub_or_none

MAX_TIMESTAMP: Final = 253402300799.0  # 9999-12-31T23:59:59Z, the last one datetime renders
# Columns written from what a server or an exception said, and their bounds.
SERVER_TEXT: Final[Mapping[str, int]] = {
    "remote_status": 64, "error_code": 100, "error_message": 2000, "error_request_id": 200,
    "message": 2000, "request_id": 200,
}
TIMESTAMPS: Final = frozenset({
    "created_at", "updated_at", "submitted_at", "completed_at", "expires_at",
    "create_started_at", "lease_expires_at", "at",
})
COUNTS: Final = frozenset({"bytes", "create_attempts", "poll_count", "download_attempts",
                           "attempt"})


def timestamp(value: Any) -> float | None:
    """A finite unix time within what `datetime` renders, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and 0 <= number <= MAX_TIMESTAMP else None


def _int_within(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return min(max(int(value), low), high)


def sane(column: str, value: Any) -> Any:
    """`value` as it may be stored in `column` (jobs or events)."""
    if value is None:
        return None
    if column in SERVER_TEXT:
        return scrub_or_none(value, SERVER_TEXT[column])
    if column in TIMESTAMPS:
        return timestamp(value)
    if column == "progress":
        return _int_within(value, 0, 100) or 0
    if column in ("http_status", "error_http_status"):
        status = _int_within(value, 0, 999)
        return status if status is not None and 100 <= status <= 599 else None
    if column in COUNTS:
        return _int_within(value, 0, 2**62)
    if column == "retry_in":
        number = timestamp(value)  # a finite, non-negative number of seconds
        return None if number is None else min(number, 10**9)
    return value


def sane_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {column: sane(column, value) for column, value in fields.items()}
