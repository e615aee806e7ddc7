"""Shared fixtures: every test runs with its state under tmp_path and a clean environment.

Fixtures here: `isolated_env` and `cli` (every test), `home`, `work` and `kicks` (CLI
tests), `make_server` and `server` (the fake server in-process), `make_fake`,
`make_sora`, `fake` and `sora` (real processes, see e2e/harness.py), `pg_database` and
`pg_url` (PostgreSQL). Helpers beside this file: clirun.py (the CLI in-process,
`one_error`, KEY), seed.py (jobs written into a store as submit and a runner would),
inproc.py (the runner in-process with quick settings: `settings_for`, `run_runner`),
waits.py (`wait_until`), pgtest.py (PostgreSQL).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clirun
import pgtest
import pytest
from e2e.harness import (
    FakeProc,
    MakeFake,
    MakeSora,
    Sora,
    make_env,
    start_fake,
    start_fake_url,
    stop_proc,
)
from inproc import MakeServer

from sora_cli.domain.text import forget_secrets
from sora_cli.fake.server import FakeOptions, FakeServer


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point SORA_HOME at tmp_path and drop every OPENAI_* / SORA_* / FAL_* /
    REPLICATE_* / KLING_* / GOOGLE_* / GEMINI_* variable, so no test reads the real
    config or credentials or touches the real data dir."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "SORA_", "FAL_", "REPLICATE_", "KLING_", "GOOGLE_",
                            "GEMINI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SORA_HOME", str(tmp_path))
    forget_secrets()  # secrets registered by another test's settings must not mask ours
    return tmp_path


@pytest.fixture(autouse=True)
def cli() -> clirun.Cli:
    """The in-process CLI of this test, recording runner starts (see clirun.py)."""
    clirun.CURRENT[0] = clirun.Cli()
    return clirun.CURRENT[0]


@pytest.fixture
def home(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SORA_HOME of a CLI test, made private: tmp_path/home, beside `work` and apart
    from any file a test puts elsewhere in tmp_path; the OpenAI API key KEY is set."""
    path = isolated_env / "home"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("SORA_HOME", str(path))
    monkeypatch.setenv("OPENAI_API_KEY", clirun.KEY)
    return path


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's current directory, where downloads go by default: tmp_path/work."""
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def kicks(cli: clirun.Cli) -> list[Path]:
    """Runner starts, recorded instead of spawned: the SORA_HOME of each."""
    return cli.kicks


# --- the fake server in-process, on a free loopback port -------------------------------

@pytest.fixture
def make_server(request: pytest.FixtureRequest) -> MakeServer:
    """Start fake servers with these FakeOptions (quick unless told: 0.2 s jobs, a poll
    hint of 50 ms); each one stops at teardown."""
    def make(**options: Any) -> FakeServer:
        server = FakeServer(FakeOptions(**{"job_seconds": 0.2, "poll_after_ms": 50,
                                           **options})).start()
        request.addfinalizer(server.stop)
        return server

    return make


@pytest.fixture
def server(make_server: MakeServer) -> FakeServer:
    """A quick fake server (`make_server`'s) serving its real sample media; prompts with
    "forbidden" end failed (moderation)."""
    return make_server(fail_prompt="forbidden")


# --- real processes (see e2e/harness.py): `sora fake-server` and `sora` ---------------


@pytest.fixture
def make_fake(request: pytest.FixtureRequest) -> MakeFake:
    """Start `sora fake-server ARGS` (scheme="https" for a TLS one); each one is
    stopped at teardown."""
    def make(*args: str, scheme: str = "http") -> FakeProc:
        fake = start_fake(*args) if scheme == "http" else start_fake_url(*args, scheme=scheme)
        request.addfinalizer(lambda: stop_proc(fake.proc))
        return fake

    return make


@pytest.fixture
def make_sora(request: pytest.FixtureRequest, tmp_path: Path) -> MakeSora:
    """A `sora` of its own (SORA_HOME tmp_path/homeN, run in tmp_path/workN) for a fake
    server (or a base URL), with `env` over harness.make_env's and no inherited CA
    settings unless `env` gives them; its runner is stopped at teardown."""
    numbers = itertools.count()

    def make(fake: FakeProc | str, **env: str) -> Sora:
        n = next(numbers)
        home, work = tmp_path / f"home{n}", tmp_path / f"work{n}"
        work.mkdir()
        url = fake if isinstance(fake, str) else fake.base_url
        s = Sora(home, make_env(home, url, **env), work)
        for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
            if name not in env:
                s.env.pop(name, None)
        request.addfinalizer(s.stop_runner)
        return s

    return make


@pytest.fixture
def fake(make_fake: MakeFake) -> FakeProc:
    """`sora fake-server` with 1 s jobs and a poll hint of 100 ms."""
    return make_fake("--job-seconds", "1", "--poll-after-ms", "100")


@pytest.fixture
def sora(fake: FakeProc, make_sora: MakeSora) -> Sora:
    """A `sora` for `fake` (its runner stops before the fake does)."""
    return make_sora(fake)


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
