"""The fake's Runway family: the task API under ``/runway``, as Runway serves it
(``Authorization: Bearer ...`` and ``X-Runway-Version: 2024-11-06`` on every request).

- ``POST /runway/v1/text_to_video`` and ``POST /runway/v1/image_to_video``: camelCase
  fields (``model``, ``promptText``, ``ratio`` "1280:720", ``duration``, ``promptImage``
  on image_to_video), checked against the catalogue; 200 ``{"id": uuid}``.
- ``GET /runway/v1/tasks/{id}``: ``PENDING`` (``THROTTLED`` while two earlier tasks are
  unfinished: the organization's concurrency), ``RUNNING`` (``progress`` 0..1),
  ``SUCCEEDED`` (``output``: one signed URL on the CDN origin, valid ``url_seconds``),
  ``FAILED`` (``failure``, ``failureCode``), ``CANCELLED``.
- ``DELETE /runway/v1/tasks/{id}``: 204; cancels an unfinished task, deletes any other
  (a deleted task answers 404 from then on).
- Errors: ``{"error": "...", "issues": [...]}``. There is no list of tasks.
- Credits, as runwayml 5.24's types require: ``estimatedCost`` on the create and on
  unfinished tasks, ``cost`` on finished ones (a cancel before RUNNING is refunded, one
  while RUNNING is not; an input the moderation refused is not refunded).

What the docs leave open, the fake decides: a missing or other X-Runway-Version answers
400; an unknown task 404 ``{"error": "Task not found"}``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from sora_cli.domain.catalogue import find_model
from sora_cli.fake.errors import ApiFailure
from sora_cli.fake.jobs import RemoteJob, invalid_fields
from sora_cli.fake.signed import signed_url

if TYPE_CHECKING:
    from sora_cli.fake.host import Responder

VERSION: Final = "2024-11-06"
CONCURRENCY: Final = 2  # tasks an organization runs at once (tier 1); the rest THROTTLED
_TASK: Final = re.compile(r"/runway/v1/tasks/([0-9a-f-]{36})")
FAILURE: Final = ("Your prompt or image was flagged by our content moderation system.",
                  "SAFETY.INPUT.TEXT")
# credits a second (Runway's API reference), without audio and with it; for veo3.1 which
# rate goes with audio is the fake's guess (the reference gives only the range)
CREDITS: Final = {"gen4.5": (12, 12), "gen4_turbo": (5, 5), "veo3.1": (20, 40),
                  "veo3.1_fast": (10, 15)}


def credits(job: RemoteJob) -> int:
    rates = CREDITS.get(job.model, (10, 10))
    seconds = job.input.get("duration")
    seconds = seconds if isinstance(seconds, int) and not isinstance(seconds, bool) else 5
    return rates[0 if job.input.get("audio") is False else 1] * seconds


def runway_route(method: str, path: str) -> str | None:
    if method == "POST" and path in ("/runway/v1/text_to_video", "/runway/v1/image_to_video"):
        return "create"
    if _TASK.fullmatch(path):
        return {"GET": "retrieve", "DELETE": "cancel"}.get(method)
    return None


def runway_api(h: Responder, path: str, query: dict[str, str], body: bytes) -> None:
    h.authorize_key("Bearer")
    if h.header("X-Runway-Version") != VERSION:
        raise ApiFailure(400, f"The X-Runway-Version header must be {VERSION!r}.")
    route = runway_route(h.command, path)
    if route is None:
        raise ApiFailure(404, f"Cannot {h.command} {path.removeprefix('/runway')}")
    if route == "create":
        _create(h, path.rsplit("/", 1)[1], h.json_body(body))
        return
    match = _TASK.fullmatch(path)
    assert match is not None
    h.take_fault(route, None)
    book = h.server.fake.backend.remote
    job = book.get("runway", match[1])
    if job is None or job.deleted:
        raise ApiFailure(404, "Task not found")
    if route == "retrieve":
        h.send_json(200, task(h, job))
        return
    with book.lock:
        state = book.state(job)
        if state in ("queued", "running"):
            job.cancelled_at = time.time()
            job.cancelled_running = state == "running"  # what the cancel observed
        else:
            job.deleted = True
    h.send_empty(204)


def _create(h: Responder, endpoint: str, payload: dict[str, Any]) -> None:
    prompt = payload.get("promptText")
    fault = h.take_fault("create", prompt if isinstance(prompt, str) else None)
    model = payload.get("model")
    info = find_model("runway", model) if isinstance(model, str) else None
    image = endpoint == "image_to_video"
    problems = invalid_fields("runway", str(model), payload,
                              prompt_field=None if image else "promptText")
    if info is None:
        problems.insert(0, ("model", f"Invalid enum value. Received {model!r}"))
    elif not image and info.image_required:
        problems.insert(0, ("model", f"{model} is not available on text_to_video"))
    elif info.size_field and not image and payload.get("ratio") in [
            s.replace("x", ":") for s in info.image_sizes]:
        problems.append(("ratio", "this ratio needs promptImage (image_to_video)"))
    if image and not isinstance(payload.get("promptImage"), str | list):
        problems.append(("promptImage", "Required"))
    if "ratio" not in payload:
        problems.append(("ratio", "Required"))
    if problems:
        raise ApiFailure(400, "Validation of body failed", details=[
            {"loc": ["body", name], "msg": msg} for name, msg in problems])
    if fault is not None and fault.action == "stall_then_create":
        h.stall(fault)
    job = h.server.fake.backend.remote.add("runway", str(model), payload,
                                            prompt=prompt if isinstance(prompt, str) else "")
    h.after_create(fault)
    answer: dict[str, Any] = {"id": job.id, "estimatedCost": {"credits": credits(job)}}
    if fault is not None and fault.action == "bad_id":
        answer["id"] = fault.text or "../../escape"
    h.send_json(200, answer)


def task(h: Responder, job: RemoteJob) -> dict[str, Any]:
    fake = h.server.fake
    book = fake.backend.remote
    state = book.state(job)
    created = datetime.fromtimestamp(job.created + fake.options.clock_offset, UTC)
    out: dict[str, Any] = {"id": job.id, "createdAt": created.isoformat().replace(
        "+00:00", "Z")}
    if state == "queued":
        ahead = sum(1 for j in book.listed("runway") if j.created < job.created
                    and book.state(j) in ("queued", "running"))
        out["status"] = "THROTTLED" if ahead >= CONCURRENCY else "PENDING"
        out["estimatedCost"] = {"credits": credits(job)}
    elif state == "running":
        elapsed = time.monotonic() - job.started
        out.update(status="RUNNING", progress=round(min(0.99, elapsed
                                                        / fake.options.job_seconds), 2),
                   estimatedCost={"credits": credits(job)})
    elif state == "succeeded":
        out.update(status="SUCCEEDED", cost={"credits": credits(job)}, output=[
            signed_url(fake.cdn_url, job.id, fake.options.url_seconds)])
    elif state == "failed":
        out.update(status="FAILED", failure=FAILURE[0], failureCode=FAILURE[1],
                   cost={"credits": credits(job)})
    else:
        out.update(status="CANCELLED",
                   cost={"credits": credits(job) if job.cancelled_running else 0})
    return out
