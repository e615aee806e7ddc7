"""The fake's Vertex AI family: Veo's long-running predictions under ``/vertex``, as
``{location}-aiplatform.googleapis.com`` serves them (its base URL, for sora and for
google-genai's ``HttpOptions(base_url=...)``, is ``{root}/vertex``), with
``Authorization: Bearer`` an access token from the fake's OAuth endpoint (google.py).

- ``POST /vertex/{v1|v1beta1}/projects/{p}/locations/{l}/publishers/google/models/
  {model}:predictLongRunning`` with ``{"instances": [{"prompt", "image"...}],
  "parameters": {...}}`` (checked against the catalogue, as the model checks them):
  ``{"name": ".../models/{model}/operations/{uuid}"}``.
- ``POST .../models/{model}:fetchPredictOperation {"operationName": name}``: the
  operation, ``{"name"}`` while queued (no ``done``), ``"done": false`` while running,
  then done with ``response.videos``: a ``gcsUri`` under ``storageUri`` (the object
  served by the GCS API on the aux origin) or, without one, the video inline as
  ``bytesBase64Encoded``; a prompt with ``fail_prompt`` is removed by the responsible-AI
  filters (done, ``raiMediaFilteredCount`` 1, its reasons, no videos).
- Errors: google.rpc.Status, ``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import TYPE_CHECKING, Any, Final

from sora_cli.domain.catalogue import find_model
from sora_cli.fake.content import content_size, iter_content
from sora_cli.fake.errors import ApiFailure
from sora_cli.fake.google import output_uri, require_token
from sora_cli.fake.jobs import RemoteJob, invalid_fields

if TYPE_CHECKING:
    from sora_cli.fake.host import Responder

_PATH: Final = re.compile(r"/vertex/(v1|v1beta1)/(projects/[a-z0-9-]+/locations/[a-z0-9-]+/"
                          r"publishers/google/models/([a-z0-9][a-z0-9.-]*))"
                          r":(predictLongRunning|fetchPredictOperation)")
RAI_REASON: Final = ("Veo could not generate videos because the input text violates "
                     "Vertex AI's usage guidelines. Support codes: 29310472")
_INSTANCE: Final = frozenset({"prompt", "image", "lastFrame", "video", "mask",
                              "referenceImages"})


def vertex_route(method: str, path: str) -> str | None:
    match = _PATH.fullmatch(path)
    if method != "POST" or match is None:
        return None
    return "create" if match[4] == "predictLongRunning" else "retrieve"


def vertex_api(h: Responder, path: str, body: bytes) -> None:
    require_token(h)
    match = _PATH.fullmatch(path)
    if h.command != "POST" or match is None:
        raise ApiFailure(404, f"The requested URL {path} was not found on this server.")
    model_path, model = match[2], match[3]
    if find_model("vertex", model) is None and not model.startswith("veo-"):
        raise ApiFailure(404, f"Publisher Model `{model_path}` was not found or your "
                         "project does not have access to it.")
    payload = h.json_body(body)
    if match[4] == "predictLongRunning":
        _create(h, model_path, model, payload)
    else:
        _fetch(h, model_path, payload)


def _create(h: Responder, model_path: str, model: str, payload: dict[str, Any]) -> None:
    instances, parameters = payload.get("instances"), payload.get("parameters", {})
    instance = instances[0] if isinstance(instances, list) and len(instances) == 1 else None
    prompt = instance.get("prompt") if isinstance(instance, dict) else None
    fault = h.take_fault("create", prompt if isinstance(prompt, str) else None)
    if not isinstance(instance, dict) or not isinstance(parameters, dict):
        raise ApiFailure(400, "Invalid JSON payload: one instance and a parameters object "
                         "are expected.")
    problems = invalid_fields("vertex", model, {**parameters, "prompt": prompt})
    problems += [(k, "unknown field") for k in instance if k not in _INSTANCE]
    count = parameters.get("sampleCount", 1)
    if not isinstance(count, int) or not 1 <= count <= 4:
        problems.append(("sampleCount", "must be 1 to 4"))
    storage = parameters.get("storageUri")
    if storage is not None and (not isinstance(storage, str) or not storage.startswith("gs://")
                                or "/" not in storage[5:].rstrip("/") + "/"):
        problems.append(("storageUri", "must be a gs:// URI"))
    if problems:
        raise ApiFailure(400, "; ".join(f"{k}: {m}" for k, m in problems))
    if fault is not None and fault.action == "stall_then_create":
        h.stall(fault)
    kept = {"prompt": prompt, "parameters": parameters,
            **{k: _summary(v) for k, v in instance.items() if k != "prompt"}}
    job = h.server.fake.backend.remote.add("vertex", model, kept, app=model_path)
    h.after_create(fault)
    name = f"{model_path}/operations/{job.id}"
    if fault is not None and fault.action == "bad_id":
        name = fault.text or "projects/../operations/escape"
    h.send_json(200, {"name": name})


def _summary(value: Any) -> Any:
    """An image as the fake keeps it: its size and hash, not its bytes."""
    if isinstance(value, dict) and isinstance(value.get("bytesBase64Encoded"), str):
        data = base64.b64decode(value["bytesBase64Encoded"])
        return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "mimeType": value.get("mimeType")}
    return value


def _fetch(h: Responder, model_path: str, payload: dict[str, Any]) -> None:
    name = payload.get("operationName")
    if not isinstance(name, str) or not name.startswith(f"{model_path}/operations/"):
        raise ApiFailure(400, "operationName must name an operation of this model.")
    h.take_fault("retrieve", None)
    book = h.server.fake.backend.remote
    job = book.get("vertex", name.rpartition("/")[2])
    if job is None or job.app != model_path:
        raise ApiFailure(404, f"Operation {name} not found.")
    h.send_json(200, operation(h, job, name))


def operation(h: Responder, job: RemoteJob, name: str) -> dict[str, Any]:
    state = h.server.fake.backend.remote.state(job)
    if state == "queued":
        return {"name": name}
    if state == "running":
        return {"name": name, "done": False}
    response: dict[str, Any] = {
        "@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
        "raiMediaFilteredCount": 0}
    if state == "failed":
        response.update(raiMediaFilteredCount=1, raiMediaFilteredReasons=[RAI_REASON])
        return {"name": name, "done": True, "response": response}
    uri = output_uri(job)
    if uri is not None:
        response["videos"] = [{"gcsUri": uri, "mimeType": "video/mp4"}]
    else:
        video_bytes = h.server.fake.options.video_bytes
        size = content_size("video", video_bytes)
        data = b"".join(iter_content(job.id, "video", size, 0, size,
                                     real=video_bytes is None))
        response["videos"] = [{"bytesBase64Encoded": base64.b64encode(data).decode(),
                               "mimeType": "video/mp4"}]
    return {"name": name, "done": True, "response": response}
