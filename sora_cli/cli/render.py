"""Turning jobs into output: JSON Lines with stable field names, plain tables, details.

Data goes to stdout, everything else to stderr. Colour only on a terminal, never
with NO_COLOR or TERM=dumb. Server-provided text is stripped of control
characters before it reaches a terminal.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from sora_cli.domain.catalogue import cost_of
from sora_cli.domain.jobs import Job
from sora_cli.domain.text import scrub

_COLOURS = {
    "queued": "2", "submitting": "36", "running": "36", "downloading": "34",
    "completed": "32", "failed": "31", "cancelled": "33", "expired": "35",
}



def iso(ts: float | None) -> str | None:
    """ISO 8601 UTC; None for a time no calendar shows (a store written by an older sora
    may hold one a server sent): never a crash for as long as the job exists."""
    if ts is None:
        return None
    try:
        when = datetime.fromtimestamp(ts, UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        return None
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def job_dict(job: Job) -> dict[str, Any]:
    """The one JSON shape of a job (documented in the README; keep names stable)."""
    error = None
    if job.error is not None:
        error = {"code": job.error.code, "message": job.error.message,
                 "http_status": job.error.http_status, "request_id": job.error.request_id}
    return {
        "id": job.id, "remote_id": job.remote_id, "status": job.status.value,
        "remote_status": job.remote_status, "progress": job.progress, "prompt": job.prompt,
        "provider": job.provider, "model": job.model, "size": job.size, "seconds": job.seconds,
        "params": dict(job.params) if job.params else None,
        "estimated_cost_usd": cost_of(job),
        "created_at": iso(job.created_at), "submitted_at": iso(job.submitted_at),
        "completed_at": iso(job.completed_at), "updated_at": iso(job.updated_at),
        "expires_at": iso(job.expires_at), "error": error, "output_path": job.output_path,
        "bytes": job.bytes, "sha256": job.sha256, "create_attempts": job.create_attempts,
        "poll_count": job.poll_count, "download_attempts": job.download_attempts,
        "label": job.label, "image": job.image, "remix_of": job.remix_of,
        "retry_of": job.retry_of, "thumbnail_path": job.thumbnail_path,
        "output_host": job.output_host,
    }


def json_line(data: dict[str, Any]) -> str:
    import json  # only --json output pays for it

    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def status_text(status: str, colour: bool) -> str:
    return f"\x1b[{_COLOURS.get(status, '0')}m{status}\x1b[0m" if colour else status


def _short(text: str, width: int) -> str:
    text = scrub(" ".join(text.split()), None)
    return text if len(text) <= width else text[: width - 1] + "…"


def cost_text(cost: float | None) -> str:
    return "-" if cost is None else f"~${cost:.2f}"


def table(jobs: Sequence[Job], *, colour: bool, prompt_width: int = 40) -> str:
    """Aligned columns, newest first as given; plain text when not a terminal."""
    labels = any(j.label is not None for j in jobs)  # a LABEL column only when one has one
    head = ("ID", "STATUS", "PROGRESS", "MODEL", "SIZE", "SECS", "EST.COST", "CREATED",
            *(("LABEL",) if labels else ()), "PROMPT")
    rows = [
        (j.id, j.status.value, f"{j.progress}%", _short(j.model_ref, 48),
         _short(j.size or "-", 20), str(j.seconds or "-"), cost_text(cost_of(j)),
         (iso(j.created_at) or "")[:19].replace("T", " "),
         *((_short(j.label or "-", 24),) if labels else ()),
         _short(j.prompt, prompt_width))
        for j in jobs
    ]
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=True)]
        cells[1] = status_text(r[1], colour) + " " * (widths[1] - len(r[1]))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def detail(job: Job, *, colour: bool, links: Mapping[str, Sequence[str]] | None = None) -> str:
    """Every field of one job, one per line, for `sora status`; `links` adds the jobs
    derived from it (`remixes`, `retries`)."""
    d = job_dict(job)
    lines = [f"{job.id}  {status_text(job.status.value, colour)}  {job.progress}%"]
    d["model"] = job.model_ref
    d["size"] = job.size or None
    d["seconds"] = job.seconds or None
    d["params"] = json_line(d["params"]) if d["params"] else None
    for key in ("remote_id", "remote_status", "label", "model", "params", "size", "seconds",
                "created_at",
                "submitted_at", "completed_at", "expires_at", "output_path", "bytes", "sha256",
                "thumbnail_path", "image", "remix_of", "retry_of"):
        if d[key] is not None:
            lines.append(f"  {key + ':':15} {scrub(str(d[key]))}")
    for key, ids in (links or {}).items():
        if ids:
            lines.append(f"  {key + ':':15} {', '.join(ids)}")
    lines.append(f"  {'estimated_cost:':15} {cost_text(cost_of(job))} (estimate)")
    if job.error is not None:
        e = job.error
        where = ", ".join(x for x in (
            f"HTTP {e.http_status}" if e.http_status else "",
            f"request {_short(e.request_id, 200)}" if e.request_id else "") if x)
        lines.append(f"  {'error:':15} {_short(e.code or 'error', 80)}: {_short(e.message, 2000)}"
                     + (f" ({where})" if where else ""))
    lines.append(f"  {'prompt:':15} {_short(job.prompt, 200)}")
    return "\n".join(lines)


def failure_line(job: Job) -> str:
    e = job.error
    if e is None:
        return f"job {job.id} {job.status.value}"
    code, message = _short(e.code or "error", 80), _short(e.message, 500)
    return f"job {job.id} {job.status.value}: {code}: {message}"
