"""Shared fixtures: every test runs with its state under tmp_path and a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import clirun
import pgtest
import pytest

from sora_cli.domain.text import forget_secrets


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
