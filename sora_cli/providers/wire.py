"""What every provider call returns and reports, whatever the provider (no I/O here):
an answer with its request id and hints, one HTTP attempt for the job's event log,
and the conversion between a server's clock and ours."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

T = TypeVar("T")

CLOCK_SLACK: Final = 2.0  # a server clock closer to ours than this counts as the same clock


def to_local(server_time: int | float | None, skew: float | None) -> float | None:
    """A server timestamp on our clock, given the server's skew (its clock minus ours)."""
    if server_time is None:
        return None
    if skew is None or abs(skew) <= CLOCK_SLACK:
        return float(server_time)
    return server_time - skew


def to_server(local_time: float, skew: float | None) -> float:
    """A local timestamp on the server's clock (the inverse of ``to_local``)."""
    if skew is None or abs(skew) <= CLOCK_SLACK:
        return local_time
    return local_time + skew


@dataclass(frozen=True)
class Answer(Generic[T]):
    value: T
    request_id: str | None
    poll_after_ms: int | None
    server_skew: float | None = None  # the server's clock minus ours (Date header), seconds


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt, reported to ``on_attempt`` for the job's event log."""

    method: str
    path: str
    attempt: int
    http_status: int | None
    request_id: str | None
    error: str | None
    retry_in: float | None


OnAttempt = Callable[[Attempt], None]
