"""`sora wait`, `sora download` and `submit --download` through CliRunner.

A background thread plays the runner by writing the store; it acts only once `wait`
has been seen watching (a spy on `watch` records every snapshot), so the tests wait
on conditions, never on sleeps.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from clirun import one_error, sora
from seed import PATH, add, fail
from waits import DEADLINE, meanwhile

from sora_cli.domain.jobs import Job, JobStatus
from sora_cli.services import waiting as services
from sora_cli.services.context import Context
from sora_cli.store.repository import Store

pytestmark = pytest.mark.usefixtures("home", "work")  # --download saves into `work`

Snapshot = dict[str, JobStatus]


class Seen:
    """Every snapshot `wait` saw; lets another thread wait for one that matches."""

    def __init__(self) -> None:
        self.snapshots: list[Snapshot] = []
        self._cond = threading.Condition()

    def add(self, jobs: list[Job]) -> None:
        with self._cond:
            self.snapshots.append({j.id: j.status for j in jobs})
            self._cond.notify_all()

    def wait_for(self, check: Callable[[Snapshot], bool]) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: any(check(s) for s in self.snapshots),
                                       DEADLINE), self.snapshots


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Seen:
    spy = Seen()
    real = services.watch

    def watch(ctx: Context, ids: list[str], *, timeout: float | None) -> Iterator[
            list[Job]]:
        for snapshot in real(ctx, ids, timeout=timeout):
            spy.add(snapshot)
            yield snapshot

    monkeypatch.setattr("sora_cli.cli.wait.watch", watch)
    return spy


def video_of(job_id: str) -> bytes:
    return b"\x00\x00\x00\x18ftypmp42" + job_id.encode() * 100


def complete(home: Path, job_id: str) -> None:
    """What the runner does for a job that succeeds, ending with the saved file."""
    saved = home / "videos" / f"{job_id}.mp4"
    saved.parent.mkdir(exist_ok=True)
    data = video_of(job_id)
    saved.write_bytes(data)
    with Store.open(home / "sora.db") as st:
        job = st.get(job_id)
        assert job is not None
        for step in PATH[PATH.index(job.status) + 1:]:
            fields: dict[str, Any] = {}
            if step is JobStatus.RUNNING:
                fields = {"remote_id": f"video_{job_id}", "remote_status": "in_progress"}
            elif step is JobStatus.DOWNLOADING:
                fields = {"remote_status": "completed", "progress": 100}
            elif step is JobStatus.COMPLETED:
                fields = {"output_path": str(saved), "bytes": len(data),
                          "sha256": hashlib.sha256(data).hexdigest(), "completed_at": time.time()}
            st.transition(job_id, step, **fields)


def active(*ids: str) -> Callable[[Snapshot], bool]:
    return lambda s: all(s.get(i, JobStatus.COMPLETED).is_active for i in ids)


def once(seen: Seen, check: Callable[[Snapshot], bool], home: Path,
         *complete_ids: str) -> Callable[[], None]:
    """The runner's part: once `wait` has seen `check` hold, complete these jobs."""
    def act() -> None:
        seen.wait_for(check)
        for job_id in complete_ids:
            complete(home, job_id)
    return act


# --- wait --------------------------------------------------------------------------------


def test_wait_returns_0_when_the_job_completes(home: Path, seen: Seen,
                                               kicks: list[Path]) -> None:
    job = add(home)
    with meanwhile(once(seen, active(job), home, job)):
        r = sora("wait", job, "--timeout", "20")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "")
    assert kicks == [home]  # unfinished work and no runner: one was started


def test_wait_download_into_a_dir_prints_the_path(home: Path, seen: Seen) -> None:
    job = add(home)
    with meanwhile(once(seen, active(job), home, job)):
        r = sora("wait", job, "--download", "-o", "clips/", "--timeout", "20")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == f"clips/{job}.mp4\n"
    assert (Path("clips") / f"{job}.mp4").read_bytes() == video_of(job)


def test_wait_download_to_a_file_name_or_the_current_dir(home: Path) -> None:
    a, b = add(home), add(home)
    complete(home, a)
    complete(home, b)
    r = sora("wait", a, "--download", "-o", "corgi.mp4")
    assert (r.exit_code, r.stdout) == (0, "corgi.mp4\n")
    assert Path("corgi.mp4").read_bytes() == video_of(a)
    r = sora("wait", b, "--download")
    assert (r.exit_code, r.stdout) == (0, f"{b}.mp4\n")
    assert Path(f"{b}.mp4").read_bytes() == video_of(b)


def test_paths_come_in_argument_order_into_a_created_dir(home: Path, seen: Seen) -> None:
    first, second = add(home), add(home)

    def runner() -> None:
        seen.wait_for(active(first, second))
        complete(home, second)
        seen.wait_for(lambda s: s[second] is JobStatus.COMPLETED and s[first].is_active)
        complete(home, first)

    with meanwhile(runner):
        r = sora("wait", first, second, "--download", "-o", "out", "--timeout", "20")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == [f"out/{first}.mp4", f"out/{second}.mp4"]
    assert sorted(os.listdir("out")) == sorted([f"{first}.mp4", f"{second}.mp4"])


def test_a_failure_is_reported_while_the_others_are_waited_for(home: Path, seen: Seen) -> None:
    bad, good = add(home), add(home)

    def runner() -> None:
        seen.wait_for(active(bad, good))
        fail(home, bad, "blocked \x1b[31mby\x1b[0m moderation")
        seen.wait_for(lambda s: s[bad] is JobStatus.FAILED and s[good].is_active)
        complete(home, good)

    with meanwhile(runner):
        r = sora("wait", bad, good, "--download", "-o", "d/", "--timeout", "20")
    assert r.exit_code == 1
    (line,) = r.stderr.splitlines()
    assert bad in line and "blocked by moderation" in line and "\x1b" not in line
    assert r.stdout == f"d/{good}.mp4\n"


def test_fail_fast_stops_at_the_first_failure(home: Path) -> None:
    bad, slow = add(home), add(home)
    fail(home, bad)
    started = time.monotonic()
    r = sora("wait", bad, slow, "--fail-fast", "--timeout", "30")
    assert r.exit_code == 1
    assert time.monotonic() - started < 15
    (line,) = r.stderr.splitlines()
    assert bad in line and "timed out" not in line
    r = sora("wait", bad, slow, "--timeout", "0.3")  # without it: waits, and 1 beats 5
    assert r.exit_code == 1 and bad in r.stderr


def test_timeout_exits_5_with_a_note(home: Path) -> None:
    job = add(home)
    started = time.monotonic()
    r = sora("wait", job, "--timeout", "0.5")
    assert r.exit_code == 5 and r.stdout == ""
    assert "timed out" in one_error(r, 5)
    assert 0.4 < time.monotonic() - started < 10


def test_unknown_id_exits_3_before_waiting(home: Path, kicks: list[Path]) -> None:
    job = add(home)
    assert "nope9999" in one_error(sora("wait", job, "nope9999", "--timeout", "20"), 3)
    assert kicks == []  # it never started watching
    one_error(sora("wait"), 2)


def test_ids_from_stdin_and_json_objects(home: Path) -> None:
    a, b = add(home), add(home)
    complete(home, a)
    fail(home, b)
    r = sora("wait", "-", "--json", input=f"{a}\n  {b[:5]} \n")
    assert r.exit_code == 1
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(d["id"], d["status"]) for d in rows] == [(a, "completed"), (b, "failed")]
    assert rows[0]["sha256"] == hashlib.sha256(video_of(a)).hexdigest()
    assert rows[1]["error"]["code"] == "moderation_blocked"


def test_wait_all_waits_for_every_unfinished_job(home: Path, seen: Seen) -> None:
    done, a, b = add(home), add(home), add(home)
    complete(home, done)
    with meanwhile(once(seen, active(a, b), home, a, b)):
        r = sora("wait", "--all", "--json", "--timeout", "20")
    assert r.exit_code == 0, r.stderr
    assert [json.loads(x)["id"] for x in r.stdout.splitlines()] == [a, b]


def test_ctrl_c_in_wait_exits_130(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*a: object, **k: object) -> Iterator[list[Job]]:
        raise KeyboardInterrupt
        yield []

    monkeypatch.setattr("sora_cli.cli.wait.watch", interrupted)
    assert "background" in one_error(sora("wait", add(home), "--timeout", "5"), 130)


def test_wait_download_refuses_to_overwrite_before_waiting(home: Path) -> None:
    job = add(home)
    Path("taken.mp4").write_bytes(b"mine")
    assert "--force" in one_error(sora("wait", job, "--download", "-o", "taken.mp4",
                                         "--timeout", "5"), 2)
    assert Path("taken.mp4").read_bytes() == b"mine"


# --- download ------------------------------------------------------------------------


def test_download_never_overwrites_without_force(home: Path) -> None:
    job = add(home)
    complete(home, job)
    r = sora("download", job, "-o", "clip.mp4")
    assert (r.exit_code, r.stdout) == (0, "clip.mp4\n")
    assert Path("clip.mp4").read_bytes() == video_of(job)
    Path("clip.mp4").write_bytes(b"edited")
    assert "--force" in one_error(sora("download", job, "-o", "clip.mp4"), 2)
    assert Path("clip.mp4").read_bytes() == b"edited"
    r = sora("download", job, "-o", "clip.mp4", "--force")
    assert r.exit_code == 0 and Path("clip.mp4").read_bytes() == video_of(job)
    r = sora("download", job[:4], "-o", "sub/")
    assert (r.exit_code, r.stdout) == (0, f"sub/{job}.mp4\n")


def test_download_of_an_unfinished_job_exits_1(home: Path, kicks: list[Path]) -> None:
    job = add(home)
    assert job in one_error(sora("download", job), 1)
    assert kicks == [home]
    assert not Path(f"{job}.mp4").exists()
    one_error(sora("download", "nope9999"), 3)


# --- submit --wait / --download -----------------------------------------------------------


def test_submit_download_prints_the_path_and_the_id_on_stderr(home: Path, seen: Seen) -> None:
    def runner() -> None:
        seen.wait_for(lambda s: len(s) == 1)
        (job,) = seen.snapshots[0]
        complete(home, job)

    with meanwhile(runner):
        r = sora("submit", "a lighthouse", "--download", "-o", "clips/", "--timeout", "20")
    assert r.exit_code == 0, r.stderr
    (job,) = seen.snapshots[0]
    assert r.stdout == f"clips/{job}.mp4\n"
    assert job in r.stderr
    assert Path(r.stdout.strip()).read_bytes() == video_of(job)


def test_submit_download_onto_an_existing_file_records_nothing(home: Path) -> None:
    Path("taken.mp4").write_bytes(b"mine")
    one_error(sora("submit", "a fox", "--download", "-o", "taken.mp4", "--timeout", "5"), 2)
    with Store.open(home / "sora.db") as st:
        assert st.list_jobs() == []


def test_submit_wait_exits_1_when_the_job_fails(home: Path, seen: Seen) -> None:
    def runner() -> None:
        seen.wait_for(lambda s: len(s) == 1)
        (job,) = seen.snapshots[0]
        fail(home, job)

    with meanwhile(runner):
        r = sora("submit", "a fox", "--wait", "--timeout", "20")
    (job,) = seen.snapshots[0]
    assert r.exit_code == 1 and r.stdout == f"{job}\n"
    assert job in r.stderr and "moderation" in r.stderr
