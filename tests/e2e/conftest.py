"""End-to-end fixtures (see harness.py): every server and runner they start stops
by itself and is also stopped at teardown."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from .harness import FakeProc, MakeFake, MakeSora, Sora, make_env, start_fake, stop_proc

# Quick jobs (0.5 s) and small videos; prompts with "forbidden" end failed (moderation).
QUICK = ("--job-seconds", "0.5", "--poll-after-ms", "100", "--video-bytes", "20000",
         "--fail-prompt", "forbidden")


@pytest.fixture
def make_fake(request: pytest.FixtureRequest) -> MakeFake:
    """Start `sora fake-server ARGS` (scheme="https" for a TLS one); each is stopped at
    teardown."""
    def make(*args: str, scheme: str = "http") -> FakeProc:
        fake = start_fake(*args, scheme=scheme)
        request.addfinalizer(lambda: stop_proc(fake.proc))
        return fake

    return make


@pytest.fixture
def make_sora(request: pytest.FixtureRequest, tmp_path: Path) -> MakeSora:
    """A `sora` of its own (tmp_path/homeN, run in tmp_path/workN) for a fake server (or
    a base URL), with `env` over harness.make_env's; its runner is stopped at teardown."""
    numbers = itertools.count()

    def make(fake: FakeProc | str, **env: str) -> Sora:
        n = next(numbers)
        home, work = tmp_path / f"home{n}", tmp_path / f"work{n}"
        work.mkdir()
        url = fake if isinstance(fake, str) else fake.base_url
        s = Sora(home, make_env(home, url, **env), work)
        request.addfinalizer(s.stop_runner)
        return s

    return make


@pytest.fixture
def fake(make_fake: MakeFake) -> FakeProc:
    """A QUICK fake server."""
    return make_fake(*QUICK)


@pytest.fixture
def sora(make_sora: MakeSora, fake: FakeProc) -> Sora:
    """A `sora` for `fake`."""
    return make_sora(fake)
