"""Jobs written straight into a SORA_HOME's store, as `sora submit` and a runner would,
and read back: for the CLI tests, which run no runner (see clirun.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sora_cli.domain.jobs import Job, JobError, JobStatus, VideoRequest
from sora_cli.store.repository import Store

PATH = (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.RUNNING, JobStatus.DOWNLOADING,
        JobStatus.COMPLETED)  # the happy path


def add(home: Path, prompt: str = "a fox", *, now: float | None = None, **request: Any) -> str:
    """Record one queued job (a `VideoRequest` of these fields); its id."""
    with Store.open(home / "sora.db") as st:
        return st.add_jobs([VideoRequest(prompt=prompt, **request)], now=now)[0].id


def advance(home: Path, job_id: str, to: JobStatus, **fields: Any) -> None:
    """Walk a job along the happy path up to `to`, as a runner would: running with the
    remote id `video_<id>`; `fields` go with the last step."""
    with Store.open(home / "sora.db") as st:
        job = st.get(job_id)
        assert job is not None, job_id
        for step in PATH[PATH.index(job.status) + 1: PATH.index(to) + 1]:
            extra: dict[str, Any] = {}
            if step is JobStatus.RUNNING:
                extra = {"remote_id": f"video_{job_id}", "remote_status": "in_progress"}
            st.transition(job_id, step, **extra, **(fields if step is to else {}))


def job_at(home: Path, to: JobStatus = JobStatus.QUEUED, *, now: float | None = None,
           **request: Any) -> Job:
    """A job recorded and walked along the happy path up to `to` (a completed one with a
    saved file, videos/<id>.mp4); a failed or cancelled one from running."""
    job_id = add(home, now=now, **{"prompt": "a fox", **request})
    end = JobStatus.RUNNING if to in (JobStatus.FAILED, JobStatus.CANCELLED) else to
    done: dict[str, Any] = {}
    if end is JobStatus.COMPLETED:
        out = home / "videos" / f"{job_id}.mp4"
        out.parent.mkdir(exist_ok=True)
        out.write_bytes(b"mp4")
        done = {"remote_status": "completed", "output_path": str(out)}
    elif end is JobStatus.DOWNLOADING:
        done = {"remote_status": "completed"}
    advance(home, job_id, end, **done)
    if to is JobStatus.FAILED:
        fail(home, job_id, "blocked")
    elif to is JobStatus.CANCELLED:
        with Store.open(home / "sora.db") as st:
            st.transition(job_id, to)
    return get(home, job_id)


def fail(home: Path, job_id: str, message: str = "blocked by moderation",
         code: str | None = "moderation_blocked", http_status: int | None = None,
         request_id: str | None = None) -> None:
    """The job fails (from where it is) with this error."""
    with Store.open(home / "sora.db") as st:
        st.transition(job_id, JobStatus.FAILED,
                      error=JobError(code, message, http_status, request_id))


def get(home: Path, job_id: str) -> Job:
    with Store.open(home / "sora.db") as st:
        job = st.get(job_id)
        assert job is not None, job_id
        return job


def recorded(home: Path) -> int:
    """How many jobs the store holds (0 before it exists)."""
    if not (home / "sora.db").exists():
        return 0
    with Store.open(home / "sora.db") as st:
        return len(st.list_jobs(limit=None))
