"""`sora watch` through CliRunner: plain lines off a terminal, the live table on one.

A background thread plays the runner by writing the store; it acts only once `watch`
has been seen showing the state it expects (a spy on `watch_active`), so the tests
wait on conditions, never on sleeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from clirun import sora
from seed import add
from waits import DEADLINE, meanwhile

from sora_cli.cli import watch as watch_mod
from sora_cli.domain.jobs import Job, JobError, JobStatus
from sora_cli.services import waiting as services
from sora_cli.services.context import Context
from sora_cli.store.repository import Store

pytestmark = pytest.mark.usefixtures("home")

Seen = dict[str, tuple[JobStatus, int]]  # what one snapshot showed: id -> (status, progress)


class Spy:
    """Every snapshot `watch` was given; another thread can wait for one that matches."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._cond = threading.Condition()

    def add(self, changed: list[Job], active: list[Job]) -> None:
        with self._cond:
            self.seen.append({j.id: (j.status, j.progress) for j in [*changed, *active]})
            self._cond.notify_all()

    def wait_for(self, check: Callable[[Seen], bool]) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: any(check(s) for s in self.seen), DEADLINE), (
                self.seen)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    seen = Spy()
    real = services.watch_active

    def watch_active(ctx: Context, **kw: Any) -> Iterator[tuple[list[Job],
                                                                         list[Job]]]:
        for changed, active in real(ctx, **kw, interval=0.02):
            seen.add(changed, active)
            yield changed, active

    monkeypatch.setattr(watch_mod, "watch_active", watch_active)
    return seen


def move(home: Path, job_id: str, *steps: JobStatus, **fields: Any) -> None:
    with Store.open(home / "sora.db") as st:
        for step in steps:
            extra: dict[str, Any] = {"remote_id": f"video_{job_id}"} if (
                step is JobStatus.RUNNING) else {}
            if step is JobStatus.FAILED:
                extra["error"] = JobError("moderation_blocked", "blocked by moderation")
            st.transition(job_id, step, **extra, **(fields if step is steps[-1] else {}))


TO_RUNNING = (JobStatus.SUBMITTING, JobStatus.RUNNING)
TO_DONE = (JobStatus.DOWNLOADING, JobStatus.COMPLETED)


def shows(job_id: str, status: JobStatus, progress: int = 0) -> Callable[[Seen], bool]:
    return lambda s: s.get(job_id) == (status, progress)


def after(spy: Spy, check: Callable[[Seen], bool], *acts: Callable[[], None]
          ) -> Callable[[], None]:
    """The runner's part: once `watch` has shown `check`, do `acts`."""
    def act() -> None:
        spy.wait_for(check)
        for one in acts:
            one()
    return act


# --- off a terminal: a line per change ------------------------------------------------------


def test_nothing_active_exits_0_at_once(home: Path) -> None:
    move(home, add(home), JobStatus.CANCELLED)
    r = sora("watch")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "sora: no active jobs\n")


def test_a_line_per_change_until_nothing_is_active(home: Path, spy: Spy,
                                                   kicks: list[Path]) -> None:
    a, b = add(home, "one"), add(home, "two")

    def runner() -> None:
        spy.wait_for(shows(b, JobStatus.QUEUED))
        move(home, a, *TO_RUNNING, progress=40)
        spy.wait_for(shows(a, JobStatus.RUNNING, 40))
        move(home, a, *TO_DONE, progress=100)
        move(home, b, JobStatus.FAILED)

    with meanwhile(runner):
        r = sora("watch", "--timeout", "20")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == [f"{a} queued 0%", f"{b} queued 0%"]
    assert f"{a} running 40%" in lines
    assert set(lines[-2:]) == {f"{a} completed 100%", f"{b} failed 0%"}
    assert len(lines) == len(set(lines))  # a line only when something changed
    assert f"job {b} failed: moderation_blocked" in r.stderr
    assert kicks  # unfinished work: the runner is kept alive


def test_json_and_quiet_lines(home: Path, spy: Spy) -> None:
    a = add(home)
    with meanwhile(after(spy, shows(a, JobStatus.QUEUED),
                         lambda: move(home, a, *TO_RUNNING, *TO_DONE, progress=100))):
        r = sora("watch", "--json")
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert rows[0]["id"] == a and rows[0]["status"] == "queued"
    assert rows[-1]["status"] == "completed" and rows[-1]["progress"] == 100
    assert {"id", "status", "progress", "estimated_cost_usd", "label"} <= rows[0].keys()
    b = add(home)
    with meanwhile(after(spy, shows(b, JobStatus.QUEUED),
                         lambda: move(home, b, JobStatus.CANCELLED))):
        r = sora("watch", "-q")
    assert r.stdout.split() == [b, b]  # queued, then cancelled


def test_label_limits_what_is_watched(home: Path, spy: Spy) -> None:
    mine, other = add(home, label="batch-7"), add(home, label="batch-8")
    with meanwhile(after(spy, shows(mine, JobStatus.QUEUED),
                         lambda: move(home, mine, JobStatus.CANCELLED))):
        r = sora("watch", "--label", "batch-7")
    assert r.exit_code == 0
    assert other not in r.stdout and r.stdout.split()[0] == mine
    assert "no active jobs with label 'nope'" in sora("watch", "--label", "nope").stderr


def test_timeout_exits_5_while_jobs_are_active(home: Path) -> None:
    a = add(home)
    r = sora("watch", "--timeout", "0.3")
    assert r.exit_code == 5
    assert r.stdout == f"{a} queued 0%\n"
    assert "timed out with 1 job(s) still active" in r.stderr
    assert "--timeout" in sora("watch", "--timeout", "-1").stderr


def test_ctrl_c_exits_130(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add(home)

    def interrupted(*a: Any, **k: Any) -> Iterator[Any]:
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(watch_mod, "watch_active", interrupted)
    r = sora("watch")
    assert r.exit_code == 130 and "interrupted" in r.stderr


# --- on a terminal: the live table ----------------------------------------------------------


def test_on_a_terminal_a_live_table(home: Path, spy: Spy,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_mod, "_terminal", lambda: True)
    monkeypatch.setattr(watch_mod, "use_colour", lambda stream: True)
    a, b = add(home, "a corgi surfing", label="b7"), add(home, "a paper boat")
    with meanwhile(after(spy, shows(b, JobStatus.QUEUED),
                         lambda: move(home, a, *TO_RUNNING, *TO_DONE, progress=100),
                         lambda: move(home, b, JobStatus.FAILED))):
        r = sora("watch")
    assert r.exit_code == 0, r.stderr
    assert "\x1b[?25l" in r.stdout  # the cursor hidden while the table is redrawn in place
    assert "2 active job(s)" in r.stdout and "a corgi surfing" in r.stdout
    assert f"job {a} completed" in r.stdout and f"job {b} failed" in r.stdout
    assert "\x1b[32m" in r.stdout  # green: completed


def test_no_colour_with_no_color(home: Path, spy: Spy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_mod, "_terminal", lambda: True)
    monkeypatch.setenv("NO_COLOR", "1")
    a = add(home)
    with meanwhile(after(spy, shows(a, JobStatus.QUEUED),
                         lambda: move(home, a, *TO_RUNNING, *TO_DONE, progress=100))):
        r = sora("watch")
    assert f"job {a} completed" in r.stdout
    assert "\x1b[32m" not in r.stdout and "\x1b[31m" not in r.stdout


@pytest.mark.parametrize("tty, term, live", [(True, "xterm", True), (True, "dumb", False),
                                             (False, "xterm", False)])
def test_live_only_on_a_real_terminal(monkeypatch: pytest.MonkeyPatch, tty: bool, term: str,
                                      live: bool) -> None:
    class Stream:
        def isatty(self) -> bool:
            return tty

    monkeypatch.setattr("sys.stdout", Stream())
    monkeypatch.setenv("TERM", term)
    assert watch_mod._terminal() is live


def test_watch_help_has_examples() -> None:
    r = sora("watch", "--help")
    assert r.exit_code == 0 and "sora watch --label batch-7" in r.stdout
