"""Waiting in tests: on a condition, with a deadline, never a bare sleep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

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



@contextmanager
def meanwhile(act: Callable[[], None], timeout: float = DEADLINE) -> Iterator[None]:
    """Run `act` in a thread during the block (the other side of the test, say the
    runner's part); its failure fails the test."""
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
