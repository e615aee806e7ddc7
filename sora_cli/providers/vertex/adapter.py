"""Veo on Vertex AI as a provider (see providers/base.py).

- Create: `POST {base}/v1/projects/{project}/locations/{location}/publishers/google/
  models/{model}:predictLongRunning` with ``{"instances": [{prompt, image...}],
  "parameters": {durationSeconds, aspectRatio, resolution, sampleCount: 1,
  storageUri...}}`` (a job's params go to `parameters`, but for the instance's own
  fields: image, lastFrame, video, mask, referenceImages; sora saves one video, the
  first, whatever `sampleCount` says); the answer's operation `name` (under the same
  model path) is kept
  in the handle, its last segment is the remote id. The base is
  `https://{location}-aiplatform.googleapis.com` (`global`: no prefix);
  `SORA_VERTEX_BASE_URL` replaces it (the fake server).
- Poll: `POST {model path}:fetchPredictOperation {"operationName": name}`, a
  google.longrunning Operation: running until `done`; then `error` ({code, message})
  failed it, or `response.videos` has the video, or it has none because the responsible
  AI filters removed them (`raiMediaFilteredCount`, `raiMediaFilteredReasons`): failed
  with those reasons. No progress, no queue position: none is documented.
- Result: a `gcsUri` (with the `storage_uri` setting: the user's bucket), fetched
  through the GCS JSON API (`GET {storage}/storage/v1/b/{bucket}/o/{object, / as %2F}
  ?alt=media`, the same OAuth token, Range resumes); else `bytesBase64Encoded` inside
  the operation answer, read again and decoded as it streams (inline.py: never held
  whole). How long an operation keeps its inline bytes is not documented.
- No list of these operations and no cancel is documented: an unanswered create is
  never sent again (`create_unconfirmed`), and `sora cancel` cannot stop a Veo job.
- Errors: google.rpc.Status, ``{"error": {"code", "message", "status"}}``. No request
  id header is documented.
- Auth: Application Default Credentials (auth.py), asked for a token on every request.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final
from urllib.parse import quote

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job, JobError
from sora_cli.domain.providers import BUILTIN
from sora_cli.errors import AmbiguousCreate, ApiError, CannotSend, InvalidInput
from sora_cli.providers.base import Created, CreateRequest, Polled, RemoteState
from sora_cli.providers.content import ContentStream
from sora_cli.providers.endpoint import EndpointSettings
from sora_cli.providers.http import HttpApi
from sora_cli.providers.inputs import text
from sora_cli.providers.outcome import ambiguous
from sora_cli.providers.vertex.auth import GoogleToken
from sora_cli.providers.vertex.inline import decode_inline, reduce_operation
from sora_cli.providers.wire import OnAttempt

API_VERSION: Final = "v1"
# The instance's fields (the rest of a job's params are `parameters`), per the reference.
INSTANCE_FIELDS: Final = frozenset({"image", "lastFrame", "video", "mask", "referenceImages"})
_NAME: Final = re.compile(r"projects/([a-z0-9-]{1,64})/locations/([a-z0-9-]{1,40})/publishers/"
                          r"google/models/([a-z0-9][a-z0-9.-]{0,99})/operations/"
                          r"([A-Za-z0-9][A-Za-z0-9_-]{0,127})")
_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]")
_INLINE: Final = re.compile(r"inline:(\d{1,3}):(\d{1,10})")
# google.rpc.Code numbers, for the code a failed operation is recorded with
_CODES: Final = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                 "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                 "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                 "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")


class GoogleApi(HttpApi):
    """Vertex's API or the GCS JSON API, with the ADC access token."""

    def __init__(self, settings: EndpointSettings, token: GoogleToken, **http: Any) -> None:
        super().__init__(settings, **http)
        self._token = token

    async def auth_headers(self) -> dict[str, str]:
        return await self._token.headers()


def make(settings: Settings, **http: Any) -> VertexProvider:
    p = settings.provider("vertex")
    assert p is not None
    location = p.extra("location") or "us-central1"
    base = p.base_url.replace("{location}-", "" if location == "global" else f"{location}-")

    def endpoint(url: str) -> EndpointSettings:
        return EndpointSettings(url, "", settings.request_timeout, settings.max_retries,
                                settings.ca_bundle)

    token = GoogleToken(settings)
    storage = p.extra("storage_url") or "https://storage.googleapis.com"
    return VertexProvider(GoogleApi(endpoint(base), token, **http),
                          GoogleApi(endpoint(storage), token, **http), token,
                          p.extra("storage_uri"))


class VertexProvider:
    name = "vertex"
    capabilities = BUILTIN["vertex"].capabilities

    def __init__(self, api: GoogleApi, storage: GoogleApi, token: GoogleToken,
                 storage_uri: str | None = None) -> None:
        self.api = api
        self.storage = storage
        self.token = token
        self.storage_uri = storage_uri

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.storage.aclose()
        self.token.close()

    def where(self, job: Job) -> str:
        return (f"POST {self.api.base_url}/{API_VERSION}/projects/.../publishers/google/"
                f"models/{job.model}:predictLongRunning")

    async def create(self, request: CreateRequest, *, on_attempt: OnAttempt) -> Created:
        job = request.job
        found = await self.token.found()
        path = (f"/{API_VERSION}/projects/{found.project}/locations/{found.location}/"
                f"publishers/google/models/{job.model}:predictLongRunning")
        answer = await self.api.call("POST", path, body=self._body(request),
                                     on_attempt=on_attempt, billed=True)
        name = answer.value.get("name")
        match = _NAME.fullmatch(name) if isinstance(name, str) else None
        if match is None or match[3] != job.model:
            raise AmbiguousCreate(ambiguous("the answer has no usable operation name"),
                                  http_status=200, request_id=answer.request_id)
        return Created(match[4], {"operation": name},
                       Polled(RemoteState.RUNNING, "running", request_id=answer.request_id))

    def _body(self, request: CreateRequest) -> dict[str, Any]:
        job = request.job
        params = dict(job.params or {})
        instance: dict[str, Any] = {"prompt": job.prompt}
        instance.update({k: params.pop(k) for k in list(params) if k in INSTANCE_FIELDS})
        image = request.image
        if image is not None and image.url is not None:
            raise CannotSend("image_unsupported", "Vertex takes an image as inline bytes or "
                             "a gs:// URI, not an https URL: give a local file, or "
                             "--param image='{\"gcsUri\": \"gs://...\", \"mimeType\": ...}'")
        if image is not None:
            import base64

            limit = BUILTIN["vertex"].inline_image_bytes
            if len(image.data) > limit:
                raise CannotSend("image_too_large", f"the image is {len(image.data)} bytes; "
                                 f"sora sends a local image to Vertex inline up to {limit}")
            instance["image"] = {"bytesBase64Encoded": base64.b64encode(image.data).decode(),
                                 "mimeType": image.mime}
        parameters: dict[str, Any] = {"sampleCount": 1}
        if job.model.startswith("veo-3"):
            # The reference lists generateAudio as required for Veo 3 models; on unless
            # --param generateAudio=false.
            parameters["generateAudio"] = True
        if self.storage_uri:
            parameters["storageUri"] = self.storage_uri
        parameters.update(params)
        return {"instances": [instance], "parameters": parameters}

    async def poll(self, job: Job, *, on_attempt: OnAttempt) -> Polled:
        name = _operation(job)
        answer = await self.api.call("POST", _fetch_path(name), body={"operationName": name},
                                     on_attempt=on_attempt, reduce=reduce_operation)
        data, rid = answer.value, answer.request_id
        if data.get("done") is not True:
            return Polled(RemoteState.RUNNING, "running", request_id=rid)
        error = data.get("error")
        if isinstance(error, Mapping):
            code = error.get("code")
            name_ = _CODES[code] if isinstance(code, int) and 0 <= code < len(_CODES) \
                else "failed"
            message = text(error.get("message")) or f"the operation failed ({name_})"
            return Polled(RemoteState.FAILED, "done", error=JobError(name_.lower(), message,
                                                                      request_id=rid))
        return self._outcome(data.get("response"), rid, self._storage_for(job))

    def _storage_for(self, job: Job) -> str | None:
        """Where this job's video may be in GCS: the storageUri it asked for (a param),
        else the storage_uri setting; None: only inline bytes are its video."""
        asked = (job.params or {}).get("storageUri")
        return asked if isinstance(asked, str) and asked else self.storage_uri

    def _outcome(self, response: Any, rid: str | None, storage: str | None) -> Polled:
        """A done operation's video, or why it has none."""
        response = response if isinstance(response, Mapping) else {}
        videos = response.get("videos")
        first = videos[0] if isinstance(videos, list) and videos else None
        if not isinstance(first, Mapping):
            filtered = response.get("raiMediaFilteredCount")
            reasons = response.get("raiMediaFilteredReasons")
            why = "; ".join(r for r in (text(x, 500) for x in reasons[:5]) if r) \
                if isinstance(reasons, list) else ""
            if (isinstance(filtered, int) and filtered > 0) or why:
                return Polled(RemoteState.FAILED, "done", error=JobError(
                    "rai_filtered", "Vertex AI's responsible-AI filters removed the video"
                    + (f": {why}" if why else ""), request_id=rid))
            return Polled(RemoteState.FAILED, "done", error=JobError(
                "no_video", "the operation is done but its response has no video",
                request_id=rid))
        result = _result(first, storage)
        if result is None:
            return Polled(RemoteState.FAILED, "done", error=JobError(
                "no_video", "the operation's video is neither a usable gs:// URI under the "
                "job's storageUri (or storage_uri setting) nor valid inline bytes",
                request_id=rid))
        return Polled(RemoteState.COMPLETED, "done", 100, result=result, request_id=rid)

    def open_result(self, job: Job, *, variant: str = "video", offset: int = 0
                    ) -> contextlib.AbstractAsyncContextManager[ContentStream]:
        result = (job.remote_handle or {}).get("result")
        if variant == "video" and isinstance(result, str):
            if (parts := gcs_parts(result)) is not None:
                return self.storage.open_stream(_object_path(*parts), offset=offset,
                                                params={"alt": "media"})
            if (m := _INLINE.fullmatch(result)) is not None:
                return self._inline(_operation(job), int(m[1]), int(m[2]), offset)
        raise InvalidInput(f"job {job.id} has no Vertex {variant} to fetch")

    @contextlib.asynccontextmanager
    async def _inline(self, name: str, ordinal: int, size: int, offset: int
                      ) -> AsyncIterator[ContentStream]:
        async with self.api.open_stream(_fetch_path(name), method="POST",
                                        json={"operationName": name}) as answer:
            yield InlineStream(answer, ordinal, size, offset)

    def result_path(self, job: Job, variant: str = "video") -> str:
        result = (job.remote_handle or {}).get("result")
        if isinstance(result, str) and (parts := gcs_parts(result)) is not None:
            return _object_path(*parts)
        if isinstance(result, str) and (m := _INLINE.fullmatch(result)) is not None:
            return f"/{API_VERSION}/...:fetchPredictOperation (inline video {m[1]})"
        return "(result)"


class InlineStream(ContentStream):
    """A ContentStream of the decoded inline video inside an operation answer: it
    starts at `offset` (the bytes before it are decoded and dropped) and is `size`
    bytes in all, as the poll counted them."""

    def __init__(self, answer: ContentStream, ordinal: int, size: int, offset: int) -> None:
        self._answer = answer
        self._ordinal = ordinal
        self.status = answer.status
        self.request_id = answer.request_id
        self.start = min(offset, size)
        self.total_size: int | None = size

    def check(self, variant: str) -> None:
        # the answer is JSON with the video inside: only its encoding can be wrong
        self._answer.check_identity(variant)

    async def chunks(self) -> AsyncIterator[bytes]:
        skip = self.start
        async for piece in decode_inline(self._answer.chunks(), self._ordinal):
            if skip >= len(piece):
                skip -= len(piece)
                continue
            yield piece[skip:]
            skip = 0


def _result(video: Mapping[str, Any], storage: str | None) -> str | None:
    """The video's reference: inline (as inline.reduce_operation rewrote it), or a gs://
    URI under `storage` (fetched with our token: never an object elsewhere)."""
    inline = video.get("bytesBase64Encoded")
    if isinstance(inline, Mapping):
        ordinal, size = inline.get("soraInline"), inline.get("bytes")
        if isinstance(ordinal, int) and isinstance(size, int) and size > 0 \
                and 0 <= ordinal < 1000:
            return f"inline:{ordinal}:{size}"
        return None
    uri = video.get("gcsUri")
    if gcs_parts(uri) is None or not storage:
        return None
    assert isinstance(uri, str)
    if not uri.startswith(storage.rstrip("/") + "/"):
        return None  # not where this job's videos go: not fetched with our token
    return uri


def gcs_parts(uri: Any) -> tuple[str, str] | None:
    """(bucket, object) of a plain gs:// URI; None when it is not one."""
    if not isinstance(uri, str) or not uri.startswith("gs://") or len(uri) > 2048:
        return None
    bucket, _, name = uri[5:].partition("/")
    if _BUCKET.fullmatch(bucket) is None or not name or not name.isprintable() \
            or ".." in name.split("/") or any(c.isspace() for c in name):
        return None
    return bucket, name


def _object_path(bucket: str, name: str) -> str:
    # the object name is one path segment: every "/" in it is sent as %2F
    return f"/storage/v1/b/{bucket}/o/{quote(name, safe='')}"


def _operation(job: Job) -> str:
    name = (job.remote_handle or {}).get("operation")
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ApiError(f"job {job.id} has no Vertex operation name")
    return name


def _fetch_path(name: str) -> str:
    # google-genai polls the operation on its model's path, as the reference shows
    return f"/{API_VERSION}/{name.rpartition('/operations/')[0]}:fetchPredictOperation"
