"""Jobs written straight into a SORA_HOME's store, as `sora submit` and a runner would,
and read back: for the CLI tests, which run no runner (see clirun.py)."""

from __future__ import annotations

import hashlib
import time
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


def video_of(job_id: str) -> bytes:
    """The bytes `walk` saves for a completed job."""
    return b"\x00\x00\x00\x18ftypmp42" + job_id.encode() * 100


def _defaults(home: Path, job_id: str, step: JobStatus, fields: dict[str, Any]
              ) -> dict[str, Any]:
    if step is JobStatus.RUNNING:
        return {"remote_id": f"video_{job_id}", "remote_status": "in_progress"}
    if step is JobStatus.DOWNLOADING:
        return {"remote_status": "completed", "progress": 100}
    if step is JobStatus.COMPLETED:
        done: dict[str, Any] = {"completed_at": time.time()}
        if "output_path" not in fields:  # the runner's file, unless the test names another
            saved = home / "videos" / f"{job_id}.mp4"
            saved.parent.mkdir(parents=True, exist_ok=True)
            data = video_of(job_id)
            saved.write_bytes(data)
            done |= {"output_path": str(saved), "bytes": len(data),
                     "sha256": hashlib.sha256(data).hexdigest()}
        return done
    if step is JobStatus.FAILED:
        return {"error": JobError("moderation_blocked", "blocked by moderation")}
    return {}


def walk(home: Path, job_id: str, to: JobStatus, **fields: Any) -> Job:
    """Move a job as a runner would: along the happy path up to `to`, or (failed,
    cancelled, expired) in one move from where it is. Each step gets what the runner
    writes there: running a remote id `video_<id>`; downloading the remote status
    `completed`; completed the saved file videos/<id>.mp4 (`video_of`), its size,
    hash and time; failed a moderation error. `fields` go with the last step and win."""
    with Store.open(home / "sora.db") as st:
        job = st.get(job_id)
        assert job is not None, job_id
        steps = (PATH[PATH.index(job.status) + 1: PATH.index(to) + 1] if to in PATH
                 else (to,))
        for step in steps:
            last = step is steps[-1]
            extra = _defaults(home, job_id, step, fields if last else {})
            job = st.transition(job_id, step, **(extra | fields if last else extra))
        return job


def job_at(home: Path, to: JobStatus = JobStatus.QUEUED, *, now: float | None = None,
           **request: Any) -> Job:
    """A job recorded and walked up to `to`; a failed or cancelled one after running."""
    job_id = add(home, now=now, **request)
    if to not in PATH:
        walk(home, job_id, JobStatus.RUNNING)
    return walk(home, job_id, to)


def fail(home: Path, job_id: str, message: str = "blocked by moderation",
         code: str | None = "moderation_blocked", http_status: int | None = None,
         request_id: str | None = None) -> Job:
    """The job fails (from where it is) with this error."""
    return walk(home, job_id, JobStatus.FAILED,
                error=JobError(code, message, http_status, request_id))


def get(home: Path, job_id: str) -> Job:
    with Store.open(home / "sora.db") as st:
        job = st.get(job_id)
        assert job is not None, job_id
        return job


def jobs(home: Path) -> list[Job]:
    """Every recorded job, newest first (none before the store exists)."""
    if not (home / "sora.db").exists():
        return []
    with Store.open(home / "sora.db") as st:
        return st.list_jobs(limit=None)


def recorded(home: Path) -> int:
    return len(jobs(home))
