"""Shared fixtures: every test runs with its state under tmp_path and a clean environment.

Beside this file: clirun.py (the CLI in-process, `one_error`, KEY), seed.py (jobs
written into a store as submit and a runner would), inproc.py (the runner in-process),
waits.py (`wait_until` and friends), pgtest.py (PostgreSQL), e2e/harness.py (real
`sora` processes and `sora fake-server`: `make_fake` and `make_sora` below).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import clirun
import pgtest
import pytest
from e2e.harness import FakeProc, MakeFake, MakeSora, Sora, make_env, start_fake, stop_proc

from sora_cli.fake.server import FakeOptions, FakeServer


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point SORA_HOME at tmp_path/home (not made) and drop every OPENAI_* / SORA_*
    variable, so no test reads the real config or touches the real data dir."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "SORA_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SORA_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(autouse=True)
def cli() -> clirun.Cli:
    """The in-process CLI of this test, recording runner starts (see clirun.py)."""
    clirun.CURRENT[0] = clirun.Cli()
    return clirun.CURRENT[0]


@pytest.fixture
def kicks(cli: clirun.Cli) -> list[Path]:
    """Runner starts, recorded instead of spawned: the SORA_HOME of each."""
    return cli.kicks


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's current directory (where downloads go by default): tmp_path/work."""
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def home(isolated_env: Path, monkeypatch: pytest.MonkeyPatch, work: Path) -> Path:
    """SORA_HOME of a CLI test, made (0700) beside `work`, with the API key KEY set."""
    isolated_env.mkdir(mode=0o700)
    monkeypatch.setenv("OPENAI_API_KEY", clirun.KEY)
    return isolated_env


# --- the fake Videos API in-process, on a free loopback port ---------------------------


@pytest.fixture
def make_server(request: pytest.FixtureRequest) -> Callable[..., FakeServer]:
    """Start fake servers with these FakeOptions (quick jobs unless told: 0.2 s, a poll
    hint of 50 ms); every one stops at teardown."""
    def make(**options: Any) -> FakeServer:
        server = FakeServer(FakeOptions(**{"job_seconds": 0.2, "poll_after_ms": 50,
                                           **options})).start()
        request.addfinalizer(server.stop)
        return server

    return make


@pytest.fixture
def server(make_server: Callable[..., FakeServer]) -> FakeServer:
    """A quick fake server (0.2 s jobs) with its real sample media; prompts with
    "forbidden" end failed (moderation)."""
    return make_server(fail_prompt="forbidden")


# --- real processes (see e2e/harness.py): `sora fake-server` and `sora` ---------------


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


# --- PostgreSQL (see pgtest.py): a fresh database per session, a fresh schema per test ---


@pytest.fixture(scope="session")
def pg_database() -> Iterator[pgtest.Database]:
    reason = pgtest.unreachable_reason()
    if reason is not None:
        pgtest.skip_or_fail(reason)
    with pgtest.fresh_database() as database:
        yield database


@pytest.fixture
def pg_url(pg_database: pgtest.Database) -> Iterator[str]:
    """The URL of an empty schema of its own: a brand-new PostgreSQL job store."""
    with pg_database.schema() as url:
        yield url
