"""End-to-end fixtures (see harness.py): every server and runner they start stops
by itself and is also stopped at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import FakeProc, Sora, make_env, start_fake, stop_proc


@pytest.fixture
def fake() -> Iterator[FakeProc]:
    server = start_fake("--job-seconds", "1", "--poll-after-ms", "100")
    yield server
    stop_proc(server.proc)


@pytest.fixture
def sora(tmp_path: Path, fake: FakeProc) -> Iterator[Sora]:
    work = tmp_path / "work"
    work.mkdir()
    s = Sora(tmp_path / "home", make_env(tmp_path / "home", fake.base_url), work)
    yield s
    s.stop_runner()


