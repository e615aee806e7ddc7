"""Shared fixtures: every test runs with its state under tmp_path and a clean environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point SORA_HOME at tmp_path and drop every OPENAI_* / SORA_* variable, so no
    test reads the real config or touches the real data dir."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "SORA_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SORA_HOME", str(tmp_path))
    return tmp_path
