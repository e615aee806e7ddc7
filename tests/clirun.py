"""The sora CLI run in-process (typer's CliRunner), with the runner starts recorded
instead of spawned: a `Hooks` goes in as the Click context object, the way
`cli.common.hooks_for` looks for it. `conftest.cli` gives each test a fresh one;
`sora(...)` runs a command with the current test's. `one_error` checks the shape of a
refusal; KEY is the API key `conftest.home` sets.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from sora_cli.cli.main import app
from sora_cli.config import Settings
from sora_cli.services.context import Hooks

KEY = "sk-test-0123456789abcdefXYZ"


class Cli:
    def __init__(self) -> None:
        self.kicks: list[Path] = []  # SORA_HOME of each runner start asked for
        self.hooks = Hooks(start_runner=self._record)

    def _record(self, settings: Settings) -> bool:
        self.kicks.append(settings.home)
        return True

    def __call__(self, *args: str, input: str | bytes | None = None) -> Result:
        return CliRunner().invoke(app, list(args), input=input, obj=self.hooks,
                                  catch_exceptions=False)


CURRENT: list[Cli] = [Cli()]  # set per test by conftest's autouse `cli` fixture


def sora(*args: str, input: str | bytes | None = None) -> Result:
    return CURRENT[0](*args, input=input)


def one_error(r: Result, code: int) -> str:
    """Exit `code`, nothing on stdout, exactly one `sora: ...` line on stderr (returned)."""
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sora: "), r.stderr
    return lines[0]
