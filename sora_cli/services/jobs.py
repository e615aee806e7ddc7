"""Finding jobs by what the user typed (ids, prefixes, @last, `-`), and cancelling them."""

from __future__ import annotations

from collections.abc import Sequence

from sora_cli.domain.jobs import Job, JobStatus
from sora_cli.services.context import Context


def resolve_all(ctx: Context, refs: Sequence[str]) -> list[Job]:
    """Every ref to a job, failing (exit 3) on the first unknown one; duplicates dropped."""
    jobs: dict[str, Job] = {}
    for ref in refs:
        job = ctx.store.resolve(ref)
        jobs.setdefault(job.id, job)
    return list(jobs.values())


def read_refs(args: Sequence[str], stdin_text: str | None) -> list[str]:
    """Ids from the arguments, with `-` replaced by whitespace-separated ids from stdin."""
    refs: list[str] = []
    for arg in args:
        if arg == "-":
            refs.extend((stdin_text or "").split())
        else:
            refs.append(arg)
    return refs


def cancel(ctx: Context, refs: Sequence[str]) -> list[tuple[Job, str]]:
    """Cancel jobs; a job already sent may still be billed, and the note says so. A sent
    job of a provider that can cancel (fal, Replicate) is cancelled there too."""
    out: list[tuple[Job, str]] = []
    for job in resolve_all(ctx, refs):
        if job.status.is_final:
            out.append((job, f"already {job.status}"))
            continue
        note = ("never sent" if job.status is JobStatus.QUEUED else
                "no longer tracked; the remote job may still run and be billed")
        if job.remote_id is not None and job.status is JobStatus.RUNNING:
            from sora_cli.services.remote import cancel_remote  # the network, only here

            note = cancel_remote(ctx, job) or note
        updated = ctx.store.transition(job.id, JobStatus.CANCELLED, release=True,
                                       message=note)
        out.append((updated, note))
    return out


def resolve(ctx: Context, ref: str) -> Job:
    """One job by id, unique prefix, remote id or @last (exit 3 when none or ambiguous)."""
    return ctx.store.resolve(ref)


def list_jobs(ctx: Context, *, statuses: Sequence[JobStatus] = (), limit: int | None = 20,
              label: str | None = None) -> list[Job]:
    """Jobs newest first, optionally only in `statuses` or with `label`."""
    return ctx.store.list_jobs(statuses=list(statuses), limit=limit, label=label)


def links(ctx: Context, job_id: str) -> dict[str, list[str]]:
    """The jobs made from this one (its remixes and retries), for `status`."""
    return ctx.store.derived(job_id)
