"""Waiting in tests: on a condition, with a deadline, never a bare sleep.

`wait_until` polls a predicate; `Seen` lets one thread wait for what another one
recorded; `meanwhile` runs the other side of a test (say, the runner's part) in a
thread for the length of a block.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")
DEADLINE = 10.0  # seconds; what no wait of a passing test comes near


def wait_until(predicate: Callable[[], T | None], timeout: float = DEADLINE,
               what: str = "the condition", interval: float = 0.02) -> T:
    """Poll `predicate` until it returns something truthy (returned), failing the test
    after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class Seen(Generic[T]):
    """Everything a spy recorded, in order; another thread can wait for an entry that
    matches."""

    def __init__(self) -> None:
        self.entries: list[T] = []
        self._cond = threading.Condition()

    def add(self, entry: T) -> None:
        with self._cond:
            self.entries.append(entry)
            self._cond.notify_all()

    def wait_for(self, check: Callable[[T], bool], timeout: float = DEADLINE) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: any(check(e) for e in self.entries),
                                       timeout), self.entries


@contextmanager
def meanwhile(act: Callable[[], None], timeout: float = DEADLINE) -> Iterator[None]:
    """Run `act` in a thread during the block; its failure fails the test."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            act()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    thread.join(timeout)
    assert not thread.is_alive()
    if errors:
        raise errors[0]
