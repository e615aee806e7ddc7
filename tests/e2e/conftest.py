"""End-to-end fixtures (see harness.py): every server and runner they start stops
by itself and is also stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .harness import FakeProc, Sora, make_env, start_fake, start_fake_url, stop_proc


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



MakeFake = Callable[..., FakeProc]
MakeSora = Callable[..., Sora]


@pytest.fixture
def make_fake() -> Iterator[MakeFake]:
    """Fake servers on demand (`make_fake("--job-seconds", "1")`), stopped at teardown."""
    started: list[FakeProc] = []

    def make(*args: str, scheme: str = "http") -> FakeProc:
        fake = start_fake(*args) if scheme == "http" else start_fake_url(*args, scheme=scheme)
        started.append(fake)
        return fake

    yield make
    for fake in started:
        stop_proc(fake.proc)


@pytest.fixture
def make_sora(tmp_path: Path) -> Iterator[MakeSora]:
    """Isolated `sora` set-ups on demand, each with its own SORA_HOME; `env` overrides."""
    made: list[Sora] = []

    def make(fake: FakeProc | str, **env: str) -> Sora:
        home, work = tmp_path / f"home{len(made)}", tmp_path / f"work{len(made)}"
        work.mkdir()
        url = fake if isinstance(fake, str) else fake.base_url
        s = Sora(home, make_env(home, url, **env), work)
        for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
            if name not in env:
                s.env.pop(name, None)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop_runner()
