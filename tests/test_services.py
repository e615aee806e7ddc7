"""The use cases as plain functions: output targets, export, submit, cancel, watch."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import Cli

from sora_cli.config import load_settings
from sora_cli.domain.jobs import Job, JobStatus, VideoRequest
from sora_cli.errors import AuthError, InvalidInput, JobNotFound, SoraError
from sora_cli.services.context import Context
from sora_cli.services.export import export, output_targets, refuse_existing
from sora_cli.services.jobs import cancel, read_refs, resolve_all
from sora_cli.services.submit import submit
from sora_cli.services.waiting import watch

pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture
def ctx(cli: Cli) -> Iterator[Context]:
    """The services' context, recording runner starts in `kicks` (see clirun.py)."""
    c = Context(load_settings(), hooks=cli.hooks)
    yield c
    c.close()


def new_job(ctx: Context, prompt: str = "a fox") -> Job:
    (job,) = ctx.store.add_jobs([VideoRequest(prompt=prompt)])
    return job


def saved_job(ctx: Context, data: bytes = b"video bytes") -> Job:
    job = new_job(ctx)
    saved = ctx.settings.videos_dir / f"{job.id}.mp4"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_bytes(data)
    st = ctx.store
    st.transition(job.id, JobStatus.SUBMITTING)
    st.transition(job.id, JobStatus.RUNNING, remote_id=f"video_{job.id}")
    st.transition(job.id, JobStatus.DOWNLOADING, remote_status="completed")
    return st.transition(job.id, JobStatus.COMPLETED, output_path=str(saved), bytes=len(data))


# --- output targets ------------------------------------------------------------------------


def test_output_targets_default_is_the_current_dir(tmp_path: Path) -> None:
    assert output_targets(["a", "b"], None, tmp_path) == {"a": tmp_path / "a.mp4",
                                                          "b": tmp_path / "b.mp4"}


def test_output_targets_file_name_for_one_job(tmp_path: Path) -> None:
    assert output_targets(["a"], "clip.mp4", tmp_path) == {"a": tmp_path / "clip.mp4"}
    assert output_targets(["a"], "/abs/clip.mp4", tmp_path) == {"a": Path("/abs/clip.mp4")}


def test_output_targets_dir_when_it_is_one_ends_in_slash_or_several(tmp_path: Path) -> None:
    (tmp_path / "exists").mkdir()
    assert output_targets(["a"], "exists", tmp_path) == {"a": tmp_path / "exists" / "a.mp4"}
    assert output_targets(["a"], "new/", tmp_path) == {"a": tmp_path / "new" / "a.mp4"}
    assert output_targets(["a", "b"], "many", tmp_path) == {
        "a": tmp_path / "many" / "a.mp4", "b": tmp_path / "many" / "b.mp4"}
    assert not (tmp_path / "new").exists() and not (tmp_path / "many").exists()


def test_output_targets_expands_the_home_dir(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert output_targets(["a"], "~/v/", Path("/elsewhere")) == {
        "a": tmp_path / "me" / "v" / "a.mp4"}


def test_refuse_existing(tmp_path: Path) -> None:
    (tmp_path / "f.mp4").write_bytes(b"x")
    refuse_existing([tmp_path / "new.mp4"], force=False)
    refuse_existing([tmp_path / "f.mp4"], force=True)
    with pytest.raises(InvalidInput, match="--force"):
        refuse_existing([tmp_path / "new.mp4", tmp_path / "f.mp4"], force=False)
    with pytest.raises(InvalidInput, match="directory"):
        refuse_existing([tmp_path], force=True)


# --- refs ----------------------------------------------------------------------------------


def test_read_refs_replaces_dash_with_stdin_ids() -> None:
    assert read_refs(["a", "-", "d"], " b\n\tc \n") == ["a", "b", "c", "d"]
    assert read_refs(["-"], None) == []


def test_resolve_all_drops_duplicates_and_fails_on_unknown(ctx: Context) -> None:
    a, b = new_job(ctx), new_job(ctx)
    assert [j.id for j in resolve_all(ctx, [a.id, b.id[:5], a.id[:4], "@last"])] == [a.id, b.id]
    with pytest.raises(JobNotFound):
        resolve_all(ctx, [a.id, "nope9999"])


# --- submit and cancel ---------------------------------------------------------------------


def test_submit_validates_all_before_the_key_and_records_nothing_on_error(
        ctx: Context, kicks: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInput):
        submit(ctx, [VideoRequest("ok"), VideoRequest("ok", seconds=5)])
    assert ctx.store.list_jobs() == [] and kicks == []
    jobs = submit(ctx, [VideoRequest("one"), VideoRequest("two")])
    assert [j.prompt for j in ctx.store.list_jobs()] == ["two", "one"]
    assert [j.status for j in jobs] == [JobStatus.QUEUED] * 2 and kicks == [ctx.settings.home]


def test_submit_without_a_key() -> None:
    keyless = Context(load_settings({"SORA_HOME": os.environ["SORA_HOME"]}))
    with pytest.raises(InvalidInput):
        submit(keyless, [VideoRequest("")])
    with pytest.raises(AuthError):
        submit(keyless, [VideoRequest("a fox")])
    assert keyless.store.list_jobs() == []
    keyless.close()


def test_cancel_notes(ctx: Context) -> None:
    queued, sent, done = new_job(ctx), new_job(ctx), saved_job(ctx)
    ctx.store.transition(sent.id, JobStatus.SUBMITTING)
    out = {job.id: (job.status, why) for job, why in cancel(ctx, [queued.id, sent.id, done.id])}
    assert out[queued.id] == (JobStatus.CANCELLED, "never sent")
    assert out[sent.id][0] is JobStatus.CANCELLED and "billed" in out[sent.id][1]
    assert out[done.id] == (JobStatus.COMPLETED, "already completed")


# --- export --------------------------------------------------------------------------------


def test_export_copies_and_never_overwrites_without_force(ctx: Context, tmp_path: Path) -> None:
    job = saved_job(ctx, b"the video")
    dest = tmp_path / "out" / "clip.mp4"
    assert export(ctx, job, dest, force=False) == dest
    assert dest.read_bytes() == b"the video"
    dest.write_bytes(b"mine")
    with pytest.raises(InvalidInput):
        export(ctx, job, dest, force=False)
    assert dest.read_bytes() == b"mine"
    export(ctx, job, dest, force=True)
    assert dest.read_bytes() == b"the video"
    assert [p.name for p in dest.parent.iterdir()] == ["clip.mp4"]  # no partial left


def test_export_without_a_saved_file(ctx: Context, tmp_path: Path) -> None:
    job = new_job(ctx)
    with pytest.raises(SoraError, match="no video"):
        export(ctx, job, tmp_path / "x.mp4", force=False)
    done = saved_job(ctx)
    Path(done.output_path or "").unlink()
    ctx.store.update(done.id, expires_at=time.time() - 10)
    expired = ctx.store.get(done.id)
    assert expired is not None
    with pytest.raises(SoraError, match="expired"):
        export(ctx, expired, tmp_path / "y.mp4", force=False)
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "y.mp4").exists()


# --- watch ---------------------------------------------------------------------------------


def test_watch_yields_on_change_and_stops_at_the_deadline(ctx: Context,
                                                          kicks: list[Path]) -> None:
    job = new_job(ctx)
    started = time.monotonic()
    snapshots = list(watch(ctx, [job.id], timeout=0.3, interval=0.05))
    assert 0.25 < time.monotonic() - started < 5
    assert len(snapshots) == 1 and snapshots[0][0].status is JobStatus.QUEUED
    assert kicks  # unfinished work: the runner is (re)started while watching


def test_watch_ends_when_all_are_final(ctx: Context, kicks: list[Path]) -> None:
    job = saved_job(ctx)
    snapshots = list(watch(ctx, [job.id], timeout=None))
    assert [[j.status for j in s] for s in snapshots] == [[JobStatus.COMPLETED]]
    assert kicks == []


def test_export_refuses_a_dangling_symlink_without_force(tmp_path: Path) -> None:
    """A symlink at the output path is never written through, even when it dangles."""
    from sora_cli.errors import InvalidInput
    from sora_cli.services.export import refuse_existing

    link = tmp_path / "out.mp4"
    link.symlink_to(tmp_path / "elsewhere" / "target.mp4")
    with pytest.raises(InvalidInput, match="exists"):
        refuse_existing([link], force=False)
