"""`sora retry`, `sora delete` and `sora prune` through CliRunner (no runner is spawned):
what they change, and that a refused command changes nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from clirun import one_error, sora
from seed import job_at

from sora_cli.domain.jobs import Job, JobStatus
from sora_cli.store.repository import Store

DAY = 86400.0


@pytest.fixture(autouse=True)
def offline(home: Path, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API is out of reach: nothing here may need it."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there


def jobs(home: Path) -> dict[str, Job]:
    with Store.open(home / "sora.db") as st:
        return {j.id: j for j in st.list_jobs(limit=None)}


def snapshot(home: Path) -> tuple[dict[str, Job], int]:
    with Store.open(home / "sora.db") as st:
        events = sum(len(st.events(j.id)) for j in st.list_jobs(limit=None))
        return {j.id: j for j in st.list_jobs(limit=None)}, events


# --- retry --------------------------------------------------------------------------------


def test_retry_submits_a_linked_copy_of_a_failed_job(home: Path) -> None:
    image = home / "inputs" / "ref.png"
    image.parent.mkdir()
    image.write_bytes(b"kept")
    old = job_at(home, JobStatus.FAILED, prompt="a heron", model="sora-2-pro", size="1024x1792",
                 seconds=12, label="batch-7", image=str(image))
    r = sora("retry", old.id)
    assert r.exit_code == 0, r.stderr
    new = jobs(home)[r.stdout.strip()]
    assert new.retry_of == old.id and new.status is JobStatus.QUEUED
    same = ("prompt", "model", "size", "seconds", "label", "image", "remix_of")
    assert [getattr(new, k) for k in same] == [getattr(old, k) for k in same]
    assert f"retries:        {new.id}" in sora("status", old.id).stdout
    assert f"retry_of:       {old.id}" in sora("status", new.id).stdout


def test_retry_of_cancelled_jobs_prints_each_new_id(home: Path) -> None:
    a, b = job_at(home, JobStatus.CANCELLED), job_at(home, JobStatus.FAILED)
    r = sora("retry", a.id, b.id, "--json")
    assert r.exit_code == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["retry_of"] for x in lines] == [a.id, b.id]


@pytest.mark.parametrize("status", [JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.COMPLETED])
def test_retry_of_an_unfinished_or_completed_job_exits_2_and_records_nothing(
        home: Path, status: JobStatus) -> None:
    failed, other = job_at(home, JobStatus.FAILED), job_at(home, status)
    before = snapshot(home)
    line = one_error(sora("retry", failed.id, other.id), 2)
    assert f"job {other.id} is {status.value}" in line and "only failed or cancelled" in line
    assert snapshot(home) == before


def test_retry_failed_takes_each_failed_job_once(home: Path) -> None:
    a, b = job_at(home, JobStatus.FAILED), job_at(home, JobStatus.FAILED)
    job_at(home, JobStatus.CANCELLED)
    job_at(home, JobStatus.COMPLETED)
    r = sora("retry", "--failed", "-q")
    assert r.exit_code == 0, r.stderr
    made = [jobs(home)[i] for i in r.stdout.split()]
    assert sorted(j.retry_of or "" for j in made) == sorted([a.id, b.id])
    r = sora("retry", "--failed")
    assert r.exit_code == 0 and r.stdout == "" and "no failed jobs to retry" in r.stderr


def test_retry_usage_errors_and_missing_key(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = job_at(home, JobStatus.FAILED)
    assert "not both" in one_error(sora("retry", job.id, "--failed"), 2)
    assert "name the jobs" in one_error(sora("retry"), 2)
    monkeypatch.delenv("OPENAI_API_KEY")
    assert "no API key" in one_error(sora("retry", job.id), 4)
    assert len(jobs(home)) == 1


# --- delete -----------------------------------------------------------------------------


def test_delete_removes_the_job_its_events_and_its_files(home: Path, tmp_path: Path) -> None:
    image = home / "inputs" / "ref.png"
    image.parent.mkdir()
    image.write_bytes(b"kept")
    done = job_at(home, JobStatus.COMPLETED, image=str(image))
    thumb = home / "videos" / f"{done.id}.webp"
    thumb.write_bytes(b"webp")
    keep = job_at(home, JobStatus.COMPLETED)
    with Store.open(home / "sora.db") as st:
        st.update(done.id, thumbnail_path=str(thumb))
        st.update(keep.id, output_path=str(tmp_path / "mine.mp4"))  # the user's own file
    (tmp_path / "mine.mp4").write_bytes(b"mine")
    r = sora("delete", done.id[:5], keep.id, "--yes")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split() == [done.id, keep.id]
    assert jobs(home) == {}
    assert not Path(str(done.output_path)).exists() and not thumb.exists()
    assert not image.exists()  # no other job uses it
    assert (tmp_path / "mine.mp4").read_bytes() == b"mine"  # never a file outside SORA_HOME
    one_error(sora("status", done.id), 3)
    one_error(sora("logs", done.id), 3)
    with Store.open(home / "sora.db") as st:
        assert st.events(done.id)[-1].kind == "deleted"  # the tombstone
        assert [e.kind for e in st.events(done.id)] == ["deleted"]


def test_a_shared_image_stays_while_another_job_uses_it(home: Path) -> None:
    image = home / "inputs" / "ref.png"
    image.parent.mkdir()
    image.write_bytes(b"kept")
    a, _ = job_at(home, JobStatus.FAILED, image=str(image)), job_at(home, image=str(image))
    assert sora("delete", a.id, "--yes").exit_code == 0
    assert image.exists()


def test_a_deleted_id_is_never_given_again(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = job_at(home, JobStatus.COMPLETED)
    assert sora("delete", gone.id, "--yes").exit_code == 0
    draws = iter([gone.id, "zzzz2345"])
    monkeypatch.setattr("sora_cli.store.repository.new_job_id", lambda: next(draws))
    r = sora("submit", "a new fox", "-q")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == "zzzz2345"


def test_delete_off_a_terminal_without_yes_exits_2_and_changes_nothing(home: Path) -> None:
    job = job_at(home, JobStatus.COMPLETED)
    before = snapshot(home)
    assert "add --yes" in one_error(sora("delete", job.id), 2)
    assert snapshot(home) == before


def test_delete_asks_on_a_terminal(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sora_cli.cli.housekeeping.interactive", lambda: True)
    job = job_at(home, JobStatus.COMPLETED)
    r = sora("delete", job.id, input="n\n")
    assert r.exit_code == 1 and "Delete 1 job(s)?" in r.stderr and "nothing deleted" in r.stderr
    assert job.id in jobs(home)
    r = sora("delete", job.id, input="y\n")
    assert r.exit_code == 0 and r.stdout.split()[-1] == job.id  # CliRunner echoes the "y"
    assert jobs(home) == {}


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING,
                                    JobStatus.DOWNLOADING])
def test_delete_remote_of_an_unfinished_job_exits_2_and_changes_nothing(
        home: Path, status: JobStatus) -> None:
    running, done = job_at(home, status), job_at(home, JobStatus.COMPLETED)
    before = snapshot(home)
    line = one_error(sora("delete", done.id, running.id, "--remote", "--yes"), 2)
    assert f"job {running.id} is {status.value}" in line and "completed or failed" in line
    assert snapshot(home) == before
    assert Path(str(done.output_path)).exists()


def test_delete_remote_without_a_key_exits_4_and_changes_nothing(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = job_at(home, JobStatus.COMPLETED)
    before = snapshot(home)
    monkeypatch.delenv("OPENAI_API_KEY")
    one_error(sora("delete", job.id, "--remote", "--yes"), 4)
    assert snapshot(home) == before


def test_delete_of_an_unknown_id_exits_3_and_changes_nothing(home: Path) -> None:
    job = job_at(home, JobStatus.COMPLETED)
    before = snapshot(home)
    one_error(sora("delete", job.id, "nope2345", "--yes"), 3)
    assert snapshot(home) == before


# --- prune ---------------------------------------------------------------------------------


def aged(home: Path) -> dict[str, Job]:
    old = time.time() - 40 * DAY
    return {
        "old_done": job_at(home, JobStatus.COMPLETED, now=old),
        "old_failed": job_at(home, JobStatus.FAILED, now=old),
        "old_running": job_at(home, JobStatus.RUNNING, now=old),
        "new_done": job_at(home, JobStatus.COMPLETED),
    }


def test_prune_dry_run_lists_and_changes_nothing(home: Path) -> None:
    made = aged(home)
    before = snapshot(home)
    r = sora("prune", "--older-than", "30d", "--dry-run", "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(r.stdout.split()) == sorted([made["old_done"].id, made["old_failed"].id])
    assert "2 job(s) would be deleted" in r.stderr
    assert snapshot(home) == before
    table = sora("prune", "--older-than", "30d", "--dry-run").stdout
    assert table.startswith("ID") and made["old_done"].id in table


def test_prune_deletes_old_finished_jobs_only(home: Path) -> None:
    made = aged(home)
    r = sora("prune", "--older-than", "4w", "--yes")
    assert r.exit_code == 0, r.stderr
    assert sorted(r.stdout.split()) == sorted([made["old_done"].id, made["old_failed"].id])
    assert set(jobs(home)) == {made["old_running"].id, made["new_done"].id}
    assert not Path(str(made["old_done"].output_path)).exists()
    r = sora("prune", "--older-than", "30d", "--status", "running", "--yes")
    assert r.stdout.split() == [made["old_running"].id]
    assert set(jobs(home)) == {made["new_done"].id}


@pytest.mark.parametrize(("args", "expected"), [
    (["--older-than", "soon"], "--older-than must be a duration like"),
    (["--older-than", "0d"], "--older-than must be a duration like"),
    (["--older-than", "30d", "--status", "old"], "--status must be one of"),
    (["--older-than", "30d"], "add --yes"),
])
def test_prune_bad_input_exits_2_and_changes_nothing(home: Path, args: list[str],
                                                     expected: str) -> None:
    aged(home)
    before = snapshot(home)
    assert expected in one_error(sora("prune", *args), 2)
    assert snapshot(home) == before
