"""The fake's Replicate family: the predictions API under ``/replicate``, as Replicate
serves it (``Authorization: Bearer ...``).

- ``POST /replicate/v1/models/{owner}/{name}/predictions`` with ``{"input": {...}}``:
  201 and the prediction (``id``, ``model``, ``version: "hidden"``, ``status``...).
- ``GET /replicate/v1/predictions/{id}``: ``starting``, ``processing``, then
  ``succeeded`` (``output``: a URL on the CDN origin) or ``failed`` (``error``), or
  ``canceled``; once the output is deleted (``expire_seconds`` after the end),
  ``data_removed: true`` and no output.
- ``POST /replicate/v1/predictions/{id}/cancel``: the prediction, canceled if unfinished.
- ``GET /replicate/v1/predictions``: newest first, ``{"previous", "next", "results"}``
  with ``next`` an absolute URL on the fake (``?cursor=N``), ``list_page_size`` a page.
- Errors: problem JSON ``{"title", "detail", "status"}``.
"""

from __future__ import annotations

import base64
import re
import time
from typing import TYPE_CHECKING, Any, Final

from sora_cli.fake.errors import ApiFailure
from sora_cli.fake.fal import iso
from sora_cli.fake.jobs import RemoteJob, invalid_fields

if TYPE_CHECKING:
    from sora_cli.fake.host import Responder

_CREATE: Final = re.compile(r"/replicate/v1/models/([\w.-]+/[\w.-]+)/predictions")
_ONE: Final = re.compile(r"/replicate/v1/predictions/([a-z0-9]+)(/cancel)?")
_STATUS: Final = {"queued": "starting", "running": "processing", "succeeded": "succeeded",
                  "failed": "failed", "cancelled": "canceled"}
FAILURE: Final = "The model refused this prompt (content policy). (E005)"


def replicate_route(method: str, path: str) -> str | None:
    if method == "POST" and _CREATE.fullmatch(path):
        return "create"
    if path == "/replicate/v1/predictions":
        return "list" if method == "GET" else None
    if (match := _ONE.fullmatch(path)) is not None:
        return {("GET", None): "retrieve", ("POST", "/cancel"): "cancel"}.get(
            (method, match[2]))
    return None


def replicate_api(h: Responder, path: str, query: dict[str, str], body: bytes) -> None:
    h.authorize_key("Bearer")
    route = replicate_route(h.command, path)
    if route is None:
        raise ApiFailure(404, "The requested resource could not be found.")
    if route == "create":
        match = _CREATE.fullmatch(path)
        assert match is not None
        _create(h, match[1], h.json_body(body))
        return
    h.take_fault(route, None)
    book = h.server.fake.backend.remote
    if route == "list":
        _list(h, query)
        return
    match = _ONE.fullmatch(path)
    assert match is not None
    job = book.get("replicate", match[1])
    if job is None:
        raise ApiFailure(404, "Not found.")
    if route == "cancel" and book.state(job) in ("queued", "running"):
        with book.lock:
            job.cancelled_at = time.time()
    h.send_json(200, prediction(h, job))


def _create(h: Responder, model: str, payload: dict[str, Any]) -> None:
    given = payload.get("input")
    prompt = given.get("prompt") if isinstance(given, dict) else None
    fault = h.take_fault("create", prompt if isinstance(prompt, str) else None)
    if not isinstance(given, dict):
        raise ApiFailure(422, "- input: Invalid type. Expected: object, given: null",
                         title="Input validation failed")
    unknown = set(payload) - {"input", "webhook", "webhook_events_filter", "stream"}
    problems = invalid_fields("replicate", model, given)
    problems += [(k, "Additional property is not allowed") for k in sorted(unknown)]
    if problems:
        raise ApiFailure(422, "\n".join(f"- input.{k}: {m}" for k, m in problems),
                         title="Input validation failed")
    if fault is not None and fault.action == "stall_then_create":
        h.stall(fault)
    job = h.server.fake.backend.remote.add("replicate", model, given, job_id=_new_id())
    h.after_create(fault)
    view = prediction(h, job)
    if fault is not None and fault.action == "bad_id":
        view["id"] = fault.text or "../../escape"
    h.send_json(201, view)


def _new_id() -> str:
    import os

    return base64.b32encode(os.urandom(16)).decode().lower().rstrip("=")


def prediction(h: Responder, job: RemoteJob) -> dict[str, Any]:
    fake = h.server.fake
    book = fake.backend.remote
    state = book.state(job)
    ended = book.ended_at(job)
    removed = state == "succeeded" and book.expired(job)
    root = f"{fake.root_url}/replicate/v1/predictions/{job.id}"
    offset = fake.options.clock_offset
    return {
        "id": job.id, "model": job.model, "version": "hidden", "input": job.input,
        "logs": "", "error": FAILURE if state == "failed" else None,
        "output": f"{fake.cdn_url}/cdn/{job.id}.mp4" if state == "succeeded" and not removed
        else None,
        "data_removed": removed, "status": _STATUS[state], "source": "api",
        "created_at": iso(job.created + offset),
        "started_at": iso(job.created + offset + 0.1) if state != "queued" else None,
        "completed_at": iso(ended + offset) if ended is not None else None,
        "metrics": {"predict_time": fake.options.job_seconds} if ended else {},
        "urls": {"get": root, "cancel": f"{root}/cancel",
                 "web": f"https://replicate.com/p/{job.id}"},
    }


def _list(h: Responder, query: dict[str, str]) -> None:
    fake = h.server.fake
    size = fake.options.list_page_size
    cursor = query.get("cursor", "0")
    if not cursor.isdigit():
        raise ApiFailure(400, "Invalid cursor.")
    page = int(cursor)
    jobs = fake.backend.remote.listed("replicate")
    chunk = jobs[page * size:(page + 1) * size]
    base = f"{fake.root_url}/replicate/v1/predictions"
    more = len(jobs) > (page + 1) * size
    h.send_json(200, {
        "previous": f"{base}?cursor={page - 1}" if page > 0 else None,
        "next": f"{base}?cursor={page + 1}" if more else None,
        "results": [prediction(h, j) for j in chunk]})
