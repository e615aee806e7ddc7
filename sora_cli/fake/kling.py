"""The fake's Kling family: Kling's own video API under ``/kling`` (its base URL is
``{root}/kling``), as api-singapore.klingai.com serves it.

- Auth: ``Authorization: Bearer <JWT>``, HS256 with the secret key, ``iss`` the access
  key, ``nbf`` <= now < ``exp`` (the keys: `FakeOptions.kling_access_key` and
  ``kling_secret_key``); else 401 with code 1000 (no token), 1002 (invalid), 1003 (not
  yet valid) or 1004 (expired).
- ``POST /kling/v1/videos/{text2video|image2video}``: ``model_name``, ``prompt``, the
  model's fields (checked against the catalogue: ``duration`` "5"/"10"...),
  ``external_task_id``, and for image2video ``image`` (a URL or raw base64). The
  reference asks that an external id be unique in the account; how Kling answers a
  duplicate is not documented: the fake refuses it (400, code 1201).
- ``GET /kling/v1/videos/{endpoint}/{task_id}``: ``data.task_status`` ``submitted``,
  ``processing``, then ``succeed`` (``task_result.videos[0].url`` on the CDN origin) or
  ``failed`` (``task_status_msg``), for prompts with ``fail_prompt``.
- ``GET /kling/v1/videos/{endpoint}?pageNum=&pageSize=`` (1-1000, 1-500): the tasks,
  newest first.
- Every answer is ``{"code", "message", "request_id", "data"}``; errors too (1201 bad
  parameters, 1203 no such task, 1302 rate limit, 5000 server error...).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from typing import TYPE_CHECKING, Any, Final

from sora_cli.domain.catalogue import find_model
from sora_cli.fake.errors import ApiFailure
from sora_cli.fake.jobs import RemoteJob, invalid_fields

if TYPE_CHECKING:
    from sora_cli.fake.host import Responder

_PATH: Final = re.compile(r"/kling/v1/videos/(text2video|image2video)(?:/([^/]+))?")
_STATUS: Final = {"queued": "submitted", "running": "processing", "succeeded": "succeed",
                  "failed": "failed", "cancelled": "failed"}
FAILURE: Final = "Failure to pass the risk control system"


def kling_route(method: str, path: str) -> str | None:
    match = _PATH.fullmatch(path)
    if match is None:
        return None
    if match[2] is not None:
        return "retrieve" if method == "GET" else None
    return {"POST": "create", "GET": "list"}.get(method)


def failure(status: int, code: int, message: str) -> ApiFailure:
    return ApiFailure(status, message, raw={"code": code, "message": message,
                                             "request_id": _request_id()})


def _request_id() -> str:
    return secrets.token_hex(16)


def _verify(h: Responder) -> None:
    options = h.server.fake.options
    scheme, _, token = h.headers.get("Authorization", "").partition(" ")
    h.offered(token.strip())
    if scheme != "Bearer" or not token.strip():
        raise failure(401, 1000, "Authorization is empty")
    try:
        head, payload, sig = token.strip().split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        given = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    except (ValueError, TypeError):
        raise failure(401, 1002, "Authorization is invalid") from None
    wanted = hmac.new(options.kling_secret_key.encode(), f"{head}.{payload}".encode(),
                      hashlib.sha256).digest()
    if not hmac.compare_digest(given, wanted) or not isinstance(claims, dict) \
            or claims.get("iss") != options.kling_access_key:
        raise failure(401, 1002, "Authorization is invalid")
    now = time.time() + options.clock_offset
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not isinstance(nbf, int) or now < nbf:
        raise failure(401, 1003, "Authorization is not yet valid")
    if not isinstance(exp, int) or now >= exp:
        raise failure(401, 1004, "Authorization has expired")


def kling_api(h: Responder, path: str, query: dict[str, str], body: bytes) -> None:
    _verify(h)
    route, match = kling_route(h.command, path), _PATH.fullmatch(path)
    if route is None or match is None:
        raise failure(404, 1203, f"resource not found: {h.command} {path}")
    endpoint = match[1]
    if route == "create":
        _create(h, endpoint, h.json_body(body))
        return
    h.take_fault(route, None)
    book = h.server.fake.backend.remote
    if route == "list":
        _list(h, endpoint, query)
        return
    job = book.get("kling", match[2])
    if job is None or job.app != endpoint:
        raise failure(404, 1203, "task not found")
    _send(h, task(h, job))


def _create(h: Responder, endpoint: str, payload: dict[str, Any]) -> None:
    prompt = payload.get("prompt")
    fault = h.take_fault("create", prompt if isinstance(prompt, str) else None)
    model = payload.get("model_name", "kling-v1")
    problems = [] if isinstance(model, str) and find_model("kling", model) else [
        ("model_name", f"unknown model {model!r}")]
    fields = {k: v for k, v in payload.items() if k != "image"}
    problems += invalid_fields("kling", str(model), fields)
    external = payload.get("external_task_id")
    if endpoint == "image2video" and not isinstance(payload.get("image"), str):
        problems.append(("image", "required for image2video"))
    if isinstance(payload.get("image"), str) and payload["image"].startswith("data:"):
        problems.append(("image", "base64 must not carry a data: prefix"))
    book = h.server.fake.backend.remote
    if external is not None and any(j.input.get("external_task_id") == external
                                    for j in book.listed("kling")):
        problems.append(("external_task_id", "already exists in this account"))
    if problems:
        raise failure(400, 1201, "; ".join(f"{k}: {m}" for k, m in problems))
    if fault is not None and fault.action == "stall_then_create":
        h.stall(fault)
    kept = {**fields, **({"image": _image(payload["image"])} if "image" in payload else {})}
    job = book.add("kling", str(model), kept, app=endpoint,
                   job_id=str(secrets.randbelow(9 * 10**17) + 10**17))
    h.after_create(fault)
    data = task(h, job)
    if fault is not None and fault.action == "bad_id":
        data["task_id"] = fault.text or "../escape"
    _send(h, {k: data[k] for k in ("task_id", "task_status", "task_info", "created_at",
                                   "updated_at")})


def _image(value: str) -> Any:
    if value.startswith(("http://", "https://")):
        return value
    data = base64.b64decode(value)
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _send(h: Responder, data: Any) -> None:
    h.send_json(200, {"code": 0, "message": "SUCCEED", "request_id": _request_id(),
                       "data": data})


def task(h: Responder, job: RemoteJob) -> dict[str, Any]:
    fake = h.server.fake
    book = fake.backend.remote
    state = book.state(job)
    created = int((job.created + fake.options.clock_offset) * 1000)
    ended = book.ended_at(job)
    out: dict[str, Any] = {
        "task_id": job.id, "task_status": _STATUS[state],
        "task_status_msg": FAILURE if state == "failed" else "",
        "task_info": {"external_task_id": job.input.get("external_task_id")},
        "created_at": created,
        "updated_at": int(((ended or time.time()) + fake.options.clock_offset) * 1000)}
    if state == "succeeded" and not book.expired(job):
        out["task_result"] = {"videos": [{"id": f"v{job.id}",
                                          "url": f"{fake.cdn_url}/cdn/{job.id}.mp4",
                                          "duration": str(job.input.get("duration", "5"))}]}
    return out


def _list(h: Responder, endpoint: str, query: dict[str, str]) -> None:
    num, size = query.get("pageNum", "1"), query.get("pageSize", "30")
    if not (num.isdigit() and size.isdigit() and 1 <= int(num) <= 1000
            and 1 <= int(size) <= 500):
        raise failure(400, 1201, "pageNum must be 1-1000 and pageSize 1-500")
    jobs = [j for j in h.server.fake.backend.remote.listed("kling") if j.app == endpoint]
    start = (int(num) - 1) * int(size)
    _send(h, [task(h, j) for j in jobs[start:start + int(size)]])
