"""Pacing of the runner's requests: the create rate limits (one per provider, so a
busy provider's window never holds back another's creates) and the poll interval."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


class RateLimit:
    """At most `per_minute` creates in any 60 s window."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._per_minute = per_minute
        self._sent: deque[float] = deque()
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                while self._sent and now - self._sent[0] >= 60:
                    self._sent.popleft()
                if len(self._sent) < self._per_minute:
                    self._sent.append(now)
                    return
                await self._sleep(60 - (now - self._sent[0]))


TROUBLE_FACTOR = 15.0  # after failed polls, back off up to this many poll_max_seconds


class Rates:
    """One `RateLimit` per provider, each at that provider's creates_per_minute."""

    def __init__(self, per_minute: Callable[[str], int]) -> None:
        self._per_minute = per_minute
        self._limits: dict[str, RateLimit] = {}

    async def acquire(self, provider: str) -> None:
        limit = self._limits.get(provider)
        if limit is None:
            limit = self._limits[provider] = RateLimit(self._per_minute(provider))
        await limit.acquire()


@dataclass
class PollPace:
    """Delay before the next poll: the server's hint, else a growing backoff, clamped;
    after a failed poll, a longer backoff (see `after_trouble`)."""

    low: float
    high: float
    current: float = 0.0
    failures: int = 0  # failed polls in a row

    def next(self, hint_ms: int | None) -> float:
        self.failures = 0
        if hint_ms is not None:
            return min(max(hint_ms / 1000, self.low), self.high)
        self.current = self.low if not self.current else min(self.current * 1.5, self.high)
        return self.current

    def after_trouble(self, hint: float | None, left: float | None) -> float:
        """Delay after a failed poll (an outage, a rate limit, an answer we could not
        read): from `high`, 1.5 times longer per failure in a row, up to TROUBLE_FACTOR x
        `high`; a server's retry hint is honoured up to that bound (a hint of 30 years is
        not), and the delay never runs past the job's own deadline (`left` seconds)."""
        self.failures += 1
        bound = self.high * TROUBLE_FACTOR
        delay = min(self.high * 1.5 ** min(self.failures - 1, 60), bound)
        if hint is not None and math.isfinite(hint):
            delay = min(max(delay, hint), bound)
        return max(min(delay, left), 0.0) if left is not None else delay
