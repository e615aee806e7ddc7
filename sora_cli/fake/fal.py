"""The fake's fal family: the queue API under ``/fal`` and the platform API's request
list on the second (aux) origin, as fal serves them.

- ``POST /fal/{endpoint id}`` (``Authorization: Key ...``): the input as JSON; answers
  ``request_id`` and the ``status_url``/``response_url``/``cancel_url``, which carry
  only the owner and the app (``/fal/fal-ai/kling-video/requests/{id}/status``): a URL
  built from the whole endpoint id gets a 404, as the subpath rule says.
- ``GET .../requests/{id}/status``: ``IN_QUEUE`` (202, with ``queue_position``),
  ``IN_PROGRESS`` (202), ``COMPLETED`` (200; with ``error``/``error_type`` once cancelled).
- ``GET .../requests/{id}``: the model's output, ``{"video": {"url", ...}}`` with the
  URL on the CDN origin; a prompt with ``fail_prompt`` answers 422 with a validation
  error, as a model refusing content does.
- ``PUT .../requests/{id}/cancel``: 202 ``CANCELLATION_REQUESTED`` while queued, else
  400 ``ALREADY_COMPLETED``.
- Errors: ``{"detail": "..."}`` or ``{"detail": [{"loc", "msg", "type"}]}``, and an
  ``x-fal-request-id`` header on every answer.
- Platform (aux origin): ``GET /fal-platform/v1/models/requests/by-endpoint`` lists the
  requests of ``endpoint_id`` that have ended, newest end first, with payloads when
  ``expand=payloads``, paged by an opaque ``cursor``.
"""

from __future__ import annotations

import base64
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from sora_cli.fake.content import content_size
from sora_cli.fake.errors import ApiFailure
from sora_cli.fake.jobs import RemoteJob, invalid_fields

if TYPE_CHECKING:
    from sora_cli.fake.host import Responder

_REQUEST: Final = re.compile(r"/fal/(.+?)/requests/([^/]+)(/status|/cancel)?")
_NAMESPACES: Final = ("workflows", "comfy")


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


def app_of(endpoint: str) -> str:
    parts = endpoint.split("/")
    return "/".join(parts[:3] if parts[0] in _NAMESPACES else parts[:2])


def fal_route(method: str, path: str) -> str | None:
    if (match := _REQUEST.fullmatch(path)) is not None:
        return {("GET", "/status"): "retrieve", ("GET", None): "retrieve",
                ("PUT", "/cancel"): "cancel"}.get((method, match[3]))
    return "create" if method == "POST" and path.count("/") >= 3 else None


def fal_api(h: Responder, path: str, body: bytes) -> None:
    """One request to the queue API (faults already taken by the caller's route)."""
    h.authorize_key("Key")
    route = fal_route(h.command, path)
    if route is None:
        raise ApiFailure(404, f"Not found: {h.command} {path}")
    if route == "create":
        _submit(h, path.removeprefix("/fal/"), h.json_body(body))
        return
    match = _REQUEST.fullmatch(path)
    assert match is not None
    job = h.server.fake.backend.remote.get("fal", match[2])
    if job is None or job.app != match[1]:  # the whole endpoint id is not the app
        raise ApiFailure(404, f"Request {match[2]} not found")
    h.take_fault(route, None)
    if route == "cancel":
        _cancel(h, job)
    elif match[3] == "/status":
        _status(h, job)
    else:
        _response(h, job)


def _submit(h: Responder, endpoint: str, payload: dict[str, Any]) -> None:
    if "/requests/" in f"/{endpoint}/" or not re.fullmatch(r"[\w.-]+(/[\w.-]+)+", endpoint):
        raise ApiFailure(404, f"Application {endpoint!r} not found")
    problems = invalid_fields("fal", endpoint, payload)
    prompt = payload.get("prompt") if isinstance(payload.get("prompt"), str) else None
    fault = h.take_fault("create", prompt)
    if problems:
        raise ApiFailure(422, problems[0][1], details=[
            {"loc": ["body", name], "msg": msg, "type": "value_error"} for name, msg in problems])
    if fault is not None and fault.action == "stall_then_create":
        h.stall(fault)
    fake = h.server.fake
    job = fake.backend.remote.add("fal", endpoint, payload, app=app_of(endpoint))
    h.after_create(fault)
    base = f"{fake.root_url}/fal/{job.app}/requests/{job.id}"
    answer = {"request_id": job.id, "response_url": base, "status_url": f"{base}/status",
              "cancel_url": f"{base}/cancel", "status": "IN_QUEUE", "queue_position": 0}
    if fault is not None and fault.action == "bad_id":
        answer["status_url"] = fault.text or "https://elsewhere.invalid/status"
    h.send_json(200, answer, {"x-fal-request-id": job.id})


def _status(h: Responder, job: RemoteJob) -> None:
    book = h.server.fake.backend.remote
    state = book.state(job)
    base = f"{h.server.fake.root_url}/fal/{job.app}/requests/{job.id}"
    out: dict[str, Any] = {"request_id": job.id, "response_url": base,
                           "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}
    if state == "queued":
        ahead = sum(1 for j in book.listed("fal") if j.created < job.created
                    and book.state(j) == "queued")
        out.update(status="IN_QUEUE", queue_position=ahead)
        h.send_json(202, out, {"x-fal-request-id": job.id})
        return
    if state == "running":
        out.update(status="IN_PROGRESS", logs=None)
        h.send_json(202, out, {"x-fal-request-id": job.id})
        return
    out.update(status="COMPLETED", logs=None, metrics={"inference_time": 1.0})
    if state == "cancelled":
        out.update(error="Request was cancelled", error_type="client_cancelled")
    h.send_json(200, out, {"x-fal-request-id": job.id})


def _response(h: Responder, job: RemoteJob) -> None:
    book = h.server.fake.backend.remote
    state = book.state(job)
    if state in ("queued", "running"):
        raise ApiFailure(400, "Request is still in progress")
    if state == "cancelled":
        raise ApiFailure(400, "Request was cancelled")
    if state == "failed":
        raise ApiFailure(422, "content policy", details=[{
            "loc": ["body", "prompt"], "type": "content_policy_violation",
            "msg": "The content could not be processed because it contained material "
                   "flagged by a content checker."}])
    size = content_size("video", h.server.fake.options.video_bytes)
    url = f"{h.server.fake.cdn_url}/cdn/{job.id}.mp4"
    h.send_json(200, {"video": {"url": url, "content_type": "video/mp4",
                                 "file_name": "output.mp4", "file_size": size}, "seed": 42},
                 {"x-fal-request-id": job.id})


def _cancel(h: Responder, job: RemoteJob) -> None:
    book = h.server.fake.backend.remote
    if book.state(job) != "queued":
        raise ApiFailure(400, "ALREADY_COMPLETED", raw={"status": "ALREADY_COMPLETED"})
    with book.lock:
        job.cancelled_at = time.time()
    h.send_json(202, {"status": "CANCELLATION_REQUESTED"}, {"x-fal-request-id": job.id})


def fal_platform(h: Responder, path: str, query: dict[str, str]) -> None:
    """``GET /fal-platform/v1/models/requests/by-endpoint`` (ended requests only)."""
    h.authorize_key("Key")
    if h.command != "GET" or path != "/fal-platform/v1/models/requests/by-endpoint":
        raise ApiFailure(404, f"Not found: {h.command} {path}")
    endpoint = query.get("endpoint_id")
    if not endpoint:
        raise ApiFailure(422, "endpoint_id is required", details=[
            {"loc": ["query", "endpoint_id"], "msg": "field required", "type": "missing"}])
    h.take_fault("list", None)
    book = h.server.fake.backend.remote
    start = _when(query.get("start")) or time.time() - 86400
    limit = min(max(int(query.get("limit", "50") or 50), 1), 100)
    page = int(base64.b64decode(query.get("cursor") or "MA==").decode() or 0)
    ended = [(book.ended_at(j), j) for j in book.listed("fal") if j.model == endpoint]
    rows = sorted(((e, j) for e, j in ended if e is not None and j.created >= start),
                  key=lambda item: -(item[0] or 0))
    chunk = rows[page * limit:(page + 1) * limit]
    more = len(rows) > (page + 1) * limit
    items = [_item(h, j, e, query.get("expand") == "payloads") for e, j in chunk]
    h.send_json(200, {"items": items, "has_more": more,
                       "next_cursor": base64.b64encode(str(page + 1).encode()).decode()
                       if more else None})


def _item(h: Responder, job: RemoteJob, ended: float | None, payloads: bool) -> dict[str, Any]:
    failed = h.server.fake.backend.remote.state(job) != "succeeded"
    item: dict[str, Any] = {
        "request_id": job.id, "endpoint_id": job.model, "sent_at": iso(job.created),
        "started_at": iso(job.created + 0.1), "ended_at": iso(ended),
        "status_code": 422 if failed else 200,
        "duration": round((ended or job.created) - job.created, 3)}
    if payloads:
        item["json_input"] = job.input
        item["json_output"] = None if failed else {
            "video": {"url": f"{h.server.fake.cdn_url}/cdn/{job.id}.mp4"}}
    return item


def _when(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ApiFailure(422, f"start: not an ISO 8601 time: {text!r}") from None

