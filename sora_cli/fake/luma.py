"""The fake's Luma family: the Dream Machine API under ``/luma/dream-machine/v1``, as
Luma serves it (``Authorization: Bearer ...``).

- ``POST .../generations/video`` (the official client's path) and ``POST .../generations``
  (the docs' examples): ``model``, ``prompt``, ``duration`` "5s", ``aspect_ratio``,
  ``resolution``, ``keyframes`` (``frame0``/``frame1``: ``{type: "image", url}`` or
  ``{type: "generation", id}``), checked against the catalogue; 201 and the generation.
- ``GET .../generations/{id}``: ``state`` ``queued``, ``dreaming``, ``completed``
  (``assets.video``: a URL on the CDN origin) or ``failed`` (``failure_reason``), the
  echoed ``request``, ``created_at``.
- ``GET .../generations?limit=&offset=``: ``{generations, count, has_more, limit,
  offset}``, newest first (the docs give no order; this is one a client must not rely on).
- ``DELETE .../generations/{id}``: 204; the generation is gone from then on.
- Errors: ``{"detail": "..."}`` (Luma documents no error shape for this API).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from sora_cli.domain.catalogue import find_model
from sora_cli.fake.errors import ApiFailure
from sora_cli.fake.jobs import RemoteJob, invalid_fields

if TYPE_CHECKING:
    from sora_cli.fake.host import Responder

ROOT: Final = "/luma/dream-machine/v1"
_ONE: Final = re.compile(ROOT + r"/generations/([0-9a-f-]{36})")
_STATE: Final = {"queued": "queued", "running": "dreaming", "succeeded": "completed",
                 "failed": "failed", "cancelled": "failed"}
FAILURE: Final = "The prompt was rejected by content moderation."
MAX_LIMIT: Final = 100  # the fake's; Luma documents none


def luma_route(method: str, path: str) -> str | None:
    if path in (f"{ROOT}/generations", f"{ROOT}/generations/video"):
        if method == "POST":
            return "create"
        return "list" if method == "GET" and path.endswith("/generations") else None
    if _ONE.fullmatch(path):
        return {"GET": "retrieve", "DELETE": "delete"}.get(method)
    return None


def luma_api(h: Responder, path: str, query: dict[str, str], body: bytes) -> None:
    h.authorize_key("Bearer")
    route = luma_route(h.command, path)
    if route is None:
        raise ApiFailure(404, "Not Found")
    if route == "create":
        _create(h, h.json_body(body))
        return
    h.take_fault(route, None)
    book = h.server.fake.backend.remote
    if route == "list":
        _list(h, query)
        return
    match = _ONE.fullmatch(path)
    assert match is not None
    job = book.get("luma", match[1])
    if job is None or job.deleted:
        raise ApiFailure(404, "Generation not found")
    if route == "retrieve":
        h.send_json(200, generation(h, job))
        return
    with book.lock:
        job.deleted = True
    h.send_empty(204)


def _create(h: Responder, payload: dict[str, Any]) -> None:
    prompt = payload.get("prompt")
    fault = h.take_fault("create", prompt if isinstance(prompt, str) else None)
    model = payload.get("model")
    problems = invalid_fields("luma", str(model), payload)
    if not isinstance(model, str) or find_model("luma", model) is None:
        problems.insert(0, ("model", "Input should be 'ray-2' or 'ray-flash-2'"))
    problems.extend(_keyframes(payload.get("keyframes")))
    if problems:
        raise ApiFailure(400, "; ".join(f"{k}: {m}" for k, m in problems))
    if fault is not None and fault.action == "stall_then_create":
        h.stall(fault)
    job = h.server.fake.backend.remote.add("luma", str(model), payload)
    h.after_create(fault)
    view = generation(h, job)
    if fault is not None and fault.action == "bad_id":
        view["id"] = fault.text or "../../escape"
    h.send_json(201, view)


def _keyframes(frames: Any) -> list[tuple[str, str]]:
    if frames is None:
        return []
    if not isinstance(frames, dict) or not set(frames) <= {"frame0", "frame1"}:
        return [("keyframes", "frame0 and/or frame1 only")]
    for name, frame in frames.items():
        ok = isinstance(frame, dict) and (
            (frame.get("type") == "image" and isinstance(frame.get("url"), str)
             and frame["url"].startswith(("http://", "https://")))
            or (frame.get("type") == "generation" and isinstance(frame.get("id"), str)))
        if not ok:
            return [(f"keyframes.{name}", "an image {type, url} (a URL) or a generation")]
    return []


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def generation(h: Responder, job: RemoteJob) -> dict[str, Any]:
    fake = h.server.fake
    state = fake.backend.remote.state(job)
    done = state == "succeeded"
    return {
        "id": job.id, "generation_type": "video", "state": _STATE[state],
        "failure_reason": FAILURE if state == "failed" else (
            "cancelled" if state == "cancelled" else None),
        "created_at": _iso(job.created + fake.options.clock_offset), "model": job.model,
        "assets": {"video": f"{fake.cdn_url}/cdn/{job.id}.mp4" if done else None,
                   "image": None, "progress_video": None},
        "request": {"generation_type": "video", **job.input},
    }


def _list(h: Responder, query: dict[str, str]) -> None:
    limit_text, offset_text = query.get("limit", "10"), query.get("offset", "0")
    if not limit_text.isdigit() or not offset_text.isdigit():
        raise ApiFailure(400, "limit and offset must be whole numbers")
    limit, offset = min(int(limit_text), MAX_LIMIT), int(offset_text)
    jobs = [j for j in h.server.fake.backend.remote.listed("luma") if not j.deleted]
    page = jobs[offset:offset + limit]
    h.send_json(200, {"generations": [generation(h, j) for j in page], "count": len(page),
                       "has_more": len(jobs) > offset + len(page), "limit": limit,
                       "offset": offset})
