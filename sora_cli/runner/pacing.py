"""Pacing of the runner's requests: the create rate limits (one per provider, so a
busy provider's window never holds back another's creates) and the poll interval."""

from __future__ import annotations

import asyncio
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
    """Delay before the next poll: the server's hint, else a growing backoff, clamped."""

    low: float
    high: float
    current: float = 0.0

    def next(self, hint_ms: int | None) -> float:
        if hint_ms is not None:
            return min(max(hint_ms / 1000, self.low), self.high)
        self.current = self.low if not self.current else min(self.current * 1.5, self.high)
        return self.current
