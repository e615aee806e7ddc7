"""End-to-end fixtures (see harness.py; make_fake and make_sora are in tests/conftest.py):
every server and runner they start stops by itself and is also stopped at teardown."""

from __future__ import annotations

import pytest

from .harness import FakeProc, MakeFake, MakeSora, Sora

# Quick jobs (0.5 s) of the fake's real sample media; prompts with "forbidden" end
# failed (moderation).
QUICK = ("--job-seconds", "0.5", "--poll-after-ms", "100", "--fail-prompt", "forbidden")


@pytest.fixture
def fake(make_fake: MakeFake) -> FakeProc:
    """A QUICK fake server."""
    return make_fake(*QUICK)


@pytest.fixture
def sora(make_sora: MakeSora, fake: FakeProc) -> Sora:
    """A `sora` for `fake`."""
    return make_sora(fake)
