"""The fake's MiniMax family: the Hailuo video API under ``/minimax``, as MiniMax serves
it (``Authorization: Bearer ...``). Errors are HTTP 200 with a non-zero
``base_resp.status_code`` (1004 the key, 2013 invalid parameters, 1002 rate limit...):
see `ApiFailure.answer`.

- ``POST /minimax/v1/video_generation``: ``model``, ``prompt``, ``duration`` (6 or 10),
  ``resolution`` ("768P"; 1080P makes 6 s only), ``first_frame_image`` (a URL or a data
  URI; required by MiniMax-Hailuo-2.3-Fast), checked against the catalogue; answers
  ``{"task_id": "<digits>", "base_resp": {"status_code": 0, "status_msg": "success"}}``.
- ``GET /minimax/v1/query/video_generation?task_id=``: ``Preparing`` then ``Queueing``,
  ``Processing``, ``Success`` (``file_id``, ``video_width``, ``video_height``) or ``Fail``
  (``base_resp`` 1027: the generated video was flagged).
- ``GET /minimax/v1/files/retrieve?file_id=``: ``{"file": {file_id, bytes, created_at,
  filename, purpose, download_url}}``; the URL is signed, on the CDN origin, valid
  ``url_seconds``: each call hands out a fresh one.
- No task list, no cancel.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any, Final

from sora_cli.domain.catalogue import find_model
from sora_cli.fake.content import content_size
from sora_cli.fake.errors import ApiFailure
from sora_cli.fake.jobs import RemoteJob, invalid_fields
from sora_cli.fake.signed import signed_url

if TYPE_CHECKING:
    from sora_cli.fake.host import Responder

OK: Final = {"status_code": 0, "status_msg": "success"}
FLAGGED: Final = {"status_code": 1027, "status_msg": "output new_sensitive"}
ROUTES: Final = {("POST", "/minimax/v1/video_generation"): "create",
                 ("GET", "/minimax/v1/query/video_generation"): "retrieve",
                 ("GET", "/minimax/v1/files/retrieve"): "retrieve"}
SIZES: Final = {"512P": (910, 512), "768P": (1366, 768), "1080P": (1920, 1080)}


def minimax_route(method: str, path: str) -> str | None:
    return ROUTES.get((method, path))


def minimax_api(h: Responder, path: str, query: dict[str, str], body: bytes) -> None:
    h.authorize_key("Bearer")
    route = minimax_route(h.command, path)
    if route is None:
        raise ApiFailure(404, f"404 page not found: {path.removeprefix('/minimax')}")
    if route == "create":
        _create(h, h.json_body(body))
        return
    h.take_fault(route, None)
    book = h.server.fake.backend.remote
    if path.endswith("/files/retrieve"):
        file_id = query.get("file_id", "")
        job = book.get("minimax", task_of(file_id)) if file_id.isdigit() else None
        if job is None or book.state(job) != "succeeded":
            raise ApiFailure(404, f"file {file_id!r} not found")
        _file(h, job, file_id)
        return
    job = book.get("minimax", query.get("task_id", ""))
    if job is None:
        raise ApiFailure(400, f"task_id {query.get('task_id', '')!r} not found")
    h.send_json(200, query_answer(h, job))


def _create(h: Responder, payload: dict[str, Any]) -> None:
    prompt = payload.get("prompt")
    fault = h.take_fault("create", prompt if isinstance(prompt, str) else None)
    model = payload.get("model")
    info = find_model("minimax", model) if isinstance(model, str) else None
    image = info is not None and info.image_required
    problems = invalid_fields("minimax", str(model), payload,
                              prompt_field=None if image else "prompt")
    if info is None:
        problems.insert(0, ("model", f"model {model!r} is not supported"))
    if problems:
        raise ApiFailure(400, ", ".join(f"{k}: {m}" for k, m in problems))
    if fault is not None and fault.action == "stall_then_create":
        h.stall(fault)
    job = h.server.fake.backend.remote.add("minimax", str(model), payload,
                                            job_id=str(random.randrange(10**14, 10**15)))
    h.after_create(fault)
    answer: dict[str, Any] = {"task_id": job.id, "base_resp": dict(OK)}
    if fault is not None and fault.action == "bad_id":
        answer["task_id"] = fault.text or "../../escape"
    h.send_json(200, answer)


def file_of(task_id: str) -> str:
    """The file id of a task's video (MiniMax's are numbers of their own)."""
    return str(int(task_id) * 2 + 1)


def task_of(file_id: str) -> str:
    return str((int(file_id) - 1) // 2)


def query_answer(h: Responder, job: RemoteJob) -> dict[str, Any]:
    book = h.server.fake.backend.remote
    state = book.state(job)
    out: dict[str, Any] = {"task_id": job.id, "base_resp": dict(OK)}
    if state == "queued":
        elapsed = time.monotonic() - job.started
        early = elapsed < h.server.fake.options.job_seconds / 20
        out["status"] = "Preparing" if early else "Queueing"
    elif state == "running":
        out["status"] = "Processing"
    elif state == "succeeded":
        width, height = SIZES.get(str(job.input.get("resolution")), SIZES["768P"])
        out.update(status="Success", file_id=file_of(job.id), video_width=width,
                   video_height=height)
    else:
        out.update(status="Fail", base_resp=dict(FLAGGED))
    return out


def _file(h: Responder, job: RemoteJob, file_id: str) -> None:
    fake = h.server.fake
    h.send_json(200, {"file": {
        "file_id": int(file_id), "bytes": content_size("video", fake.options.video_bytes),
        "created_at": int(job.created + fake.options.job_seconds + fake.options.clock_offset),
        "filename": "output.mp4", "purpose": "video_generation",
        "download_url": signed_url(fake.cdn_url, job.id, fake.options.url_seconds)},
        "base_resp": dict(OK)})
