"""`sora logs`: a job's event history, from the store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import open_context, out
from sora_cli.cli.render import json_line
from sora_cli.domain.text import scrub
from sora_cli.store.rows import Event


def event_dict(event: Event) -> dict[str, Any]:
    """The JSON shape of an event (documented in the README; keep names stable)."""
    return {
        "job_id": event.job_id, "at": stamp(event.at), "kind": event.kind,
        "from_status": event.from_status, "to_status": event.to_status,
        "attempt": event.attempt, "http_status": event.http_status,
        "request_id": event.request_id, "retry_in": event.retry_in,
        "message": event.message, "runner_id": event.runner_id,
    }


def stamp(at: float) -> str:
    when = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    return when.replace("+00:00", "Z")


def event_line(event: Event) -> str:
    parts = [stamp(event.at).replace("T", " ").removesuffix("Z"), event.kind]
    if event.to_status:
        parts.append(f"{event.from_status or ''} -> {event.to_status}".strip())
    if event.attempt is not None:
        parts.append(f"attempt {event.attempt}")
    if event.http_status is not None:
        parts.append(f"HTTP {event.http_status}")
    if event.retry_in is not None:
        parts.append(f"retry in {event.retry_in:.2f} s")
    if event.request_id:
        parts.append(f"request {event.request_id}")
    line = "  ".join(parts)
    if event.message:
        line += f": {' '.join(event.message.split())}"
    return scrub(line, None)


@app.command("logs")
def logs_cmd(
    tctx: typer.Context,
    job_id: str = typer.Argument(..., metavar="ID", help="Job id, prefix, remote id or @last."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per event per line."),
) -> None:
    """Show a job's history: each transition, each HTTP attempt (status, retry delay,
    request id) and each error, oldest first (times in UTC).

    \b
    sora logs k3x9
    sora logs @last --json | jq -r 'select(.http_status >= 400) | .request_id'
    """
    from sora_cli.services.housekeeping import job_events  # here: `sora --help` never pays for it

    ctx = open_context(tctx)
    _, events = job_events(ctx, job_id)
    for event in events:
        out(json_line(event_dict(event)) if as_json else event_line(event))
