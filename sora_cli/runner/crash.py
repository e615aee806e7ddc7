"""The test-only crash seam of the runner: with ``SORA_TEST_CRASH_AT=<point>`` in its
environment, the runner SIGKILLs itself at that point (``after_claim``, ``before_create``,
``after_create``, ``before_complete``), so the end-to-end tests can crash it exactly
between two steps. Nothing else reads it; it is not a setting."""

from __future__ import annotations

import os
import signal

CRASH_ENV = "SORA_TEST_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
