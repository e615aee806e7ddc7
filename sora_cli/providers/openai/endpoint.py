"""A named endpoint of the Videos contract (`[providers.NAME] api = "openai"`): the
contract's adapter, tolerant of the dialects servers of it speak, without guessing with
money.

- Create encoding: ``auto`` sends JSON; a 415 or 422 answer to it is a refusal (nothing
  was made), so the same create is sent once more as multipart, and when that one is
  accepted the endpoint remembers it (`Memory`: the job store's meta table in the
  runner, so every runner of the store learns it once). ``json``/``multipart`` fix it.
- ``seconds_type = "number"`` sends ``seconds`` as a JSON number; ``list_params`` go on
  every list call.
- A minimal create answer (``id``, ``status``, ``created_at``) is enough: the rest comes
  from the first retrieve.
- Ids are opaque (``gemini::operations/...``): one percent-encoded path segment.
- A server without a list (404 or 405 on ``GET /videos``) cannot reconcile an unanswered
  create: the job fails ``create_unconfirmed`` and nothing is sent again. That too is
  remembered (and a later list is not asked for).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any, Final

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job
from sora_cli.domain.providers import ENDPOINT_CAPABILITIES, EndpointDialect
from sora_cli.errors import AmbiguousCreate, ApiError, InvalidInput, SoraError
from sora_cli.provider_settings import ProviderSettings
from sora_cli.providers.base import Created, CreateRequest, Found, Memory, Polled, RemoteState
from sora_cli.providers.openai.adapter import OpenAIProvider
from sora_cli.providers.openai.client import VideosClient
from sora_cli.providers.openai.types import ApiSettings, id_segment
from sora_cli.providers.wire import Answer, OnAttempt

log = logging.getLogger("sora.runner")
REFUSED_AS_JSON: Final = (415, 422)  # unsupported media type; a form-only handler's 422
NO_LIST: Final = (404, 405)
ENCODING: Final = "encoding"  # facts learned, kept in the Memory
LISTS: Final = "lists"


class InProcess:
    """A `Memory` that lasts as long as the process (commands that make no creates)."""

    def __init__(self) -> None:
        self._facts: dict[str, str] = {}

    def recall(self, key: str) -> str | None:
        return self._facts.get(key)

    def remember(self, key: str, value: str) -> None:
        self._facts[key] = value


def make_endpoint(settings: Settings, endpoint: ProviderSettings, memory: Memory | None = None,
                  **http: Any) -> EndpointProvider:
    if endpoint.dialect is None:
        raise InvalidInput(f"{endpoint.name} is not a named endpoint of the Videos contract")
    api = ApiSettings(base_url=endpoint.base_url, api_key=endpoint.api_key or "",
                      timeout=settings.request_timeout, max_retries=settings.max_retries,
                      ca_bundle=settings.ca_bundle)
    return EndpointProvider(VideosClient(api, **http), endpoint.name, endpoint.dialect,
                            memory or InProcess())


class EndpointProvider(OpenAIProvider):
    capabilities = ENDPOINT_CAPABILITIES

    def __init__(self, client: VideosClient, name: str, dialect: EndpointDialect,
                 memory: Memory) -> None:
        super().__init__(client)
        self.name = name
        self.dialect = dialect
        self._memory = memory

    def _key(self, fact: str) -> str:
        # per name AND base URL (pointing the name at another server forgets what was
        # learned); short, for the meta table's 64-character keys
        where = hashlib.sha256(self.client.base_url.encode()).hexdigest()[:8]
        return f"{fact}@{self.name}#{where}"

    def _recall(self, fact: str) -> str | None:
        try:
            return self._memory.recall(self._key(fact))
        except SoraError as exc:  # the store is away: act as if nothing was learned
            log.warning("cannot read what %s learned: %s", self.name, exc)
            return None

    def _learn(self, fact: str, value: str) -> None:
        try:
            self._memory.remember(self._key(fact), value)
        except SoraError as exc:  # never lose the answer for it: learn it next time
            log.warning("cannot keep what %s learned (%s=%s): %s", self.name, fact, value, exc)

    def encoding(self) -> str:
        """What the next create is sent as: json, multipart, or auto (JSON, then learn)."""
        if self.dialect.create_encoding != "auto":
            return self.dialect.create_encoding
        return "multipart" if self._recall(ENCODING) == "multipart" else "auto"

    async def create(self, request: CreateRequest, *, on_attempt: OnAttempt) -> Created:
        if request.remix_source is not None:
            return await super().create(request, on_attempt=on_attempt)
        encoding = self.encoding()
        try:
            answer = await self._send(request, multipart=encoding == "multipart",
                                      on_attempt=on_attempt)
        except AmbiguousCreate:
            raise
        except ApiError as exc:
            if encoding != "auto" or exc.http_status not in REFUSED_AS_JSON:
                raise
            # Refused as JSON: provably nothing was made. Once more as a form, once only.
            answer = await self._send(request, multipart=True, on_attempt=on_attempt)
            self._learn(ENCODING, "multipart")
            log.info("%s takes creates as multipart forms only (HTTP %s to JSON): "
                     "remembered", self.name, exc.http_status)
        return Created(answer.value.id, None, self._with_result(answer))

    async def _send(self, request: CreateRequest, *, multipart: bool,
                    on_attempt: OnAttempt) -> Answer[Any]:
        job, image = request.job, request.image
        url = image.url if image is not None else None
        upload = (image.name, image.data, image.mime) if image and not url else None
        return await self.client.create(
            prompt=job.prompt, model=job.model, size=job.size, seconds=job.seconds,
            image_url=url, image_file=upload, extra=job.params, on_attempt=on_attempt,
            multipart=multipart, seconds_number=self.dialect.seconds_type == "number")

    async def poll(self, job: Job, *, on_attempt: OnAttempt) -> Polled:
        assert job.remote_id is not None
        return self._with_result(await self.client.retrieve(job.remote_id,
                                                            on_attempt=on_attempt))

    def _with_result(self, answer: Answer[Any]) -> Polled:
        """The answer's state; a completed video's result is its content endpoint (kept
        with the job, so `sora download` knows there is one)."""
        from sora_cli.providers.openai.adapter import polled

        p = polled(answer)
        if p.state is not RemoteState.COMPLETED:
            return p
        return Polled(p.state, p.remote_status, p.progress, error=p.error,
                      result=f"/videos/{id_segment(answer.value.id)}/content",
                      expires_at=p.expires_at, poll_after=p.poll_after, request_id=p.request_id)

    async def find_created(self, request: CreateRequest, *, taken: Callable[[str], bool],
                           on_attempt: OnAttempt) -> Found:
        if self._recall(LISTS) == "no":
            return Found(undecided=self._unlisted())
        try:
            return await self._find(request, taken=taken, on_attempt=on_attempt)
        except ApiError as exc:
            status = exc.http_status or 0
            if status in NO_LIST:
                self._learn(LISTS, "no")
                return Found(undecided=self._unlisted(status))
            if 400 <= status < 500 and not exc.retryable:
                # refused for good (a list_params the gateway wants, a key it rejects):
                # waiting would never end, and guessing could pay twice
                return Found(undecided=(
                    f"the create request got no usable answer, and {self.name} refused to "
                    f"list its videos (HTTP {status}: {exc.message}), so whether it made one "
                    "cannot be told: it was not sent again (check list_params in "
                    f"[providers.{self.name}])"))
            raise

    async def _find(self, request: CreateRequest, *, taken: Callable[[str], bool],
                    on_attempt: OnAttempt) -> Found:
        from sora_cli.providers.openai.adapter import from_video
        from sora_cli.providers.openai.reconcile import find_created

        found = await find_created(self.client, request.job, taken=taken, on_attempt=on_attempt,
                                   remixed_from=request.remix_source,
                                   list_params=dict(self.dialect.list_params))
        if found.video is None:
            return Found(undecided=found.undecided)
        return Found(Created(found.video.id, None, from_video(found.video)), found.others)

    def _unlisted(self, status: int | None = None) -> str:
        answered = f" (HTTP {status} to GET /videos)" if status else ""
        return (f"the create request got no usable answer, and {self.name} has no list of "
                f"its videos{answered}, so whether it made one cannot be told: it was not "
                f"sent again. Check {self.client.base_url} before `sora retry`")
