"""The provider interface: all the runner and the services know of a provider.

One adapter per provider family (`providers/<name>/adapter.py`, found through
registry.py), made of transforms only: a job to the provider's request, the
provider's answers to the shapes below, its errors to sora's exceptions. The HTTP
calls, retries, redirects and downloads are shared (http.py, download.py).

Required, for every provider:

- ``create(request) -> Created``: start the remote job. ``Created.remote_id`` is an
  opaque string (uuids, ``owner/op::id``...: never parsed, never a file name);
  ``Created.handle`` is whatever else the provider hands back to address the job (fal's
  status/response/cancel URLs), stored with the job as JSON and given back in
  ``job.remote_handle``. A create that may have reached the provider without a usable
  answer raises ``AmbiguousCreate``: it is never re-sent blindly (see find_created).
- ``poll(job) -> Polled``: the remote job's state (queued, running, completed,
  failed, cancelled, gone), progress or queue position, error, result reference
  (kept in the handle as ``result``), expiry and the provider's poll hint.
- ``open_result(job, variant, offset)``: the result's bytes from ``offset`` (Range),
  as a `ContentStream`; download.py resumes, hashes and saves them. A result on
  another origin (a CDN, a signed URL) is fetched without credentials.
- ``where(job)``: the endpoint a create goes to, for messages.
- ``aclose()``.

Optional, declared in ``capabilities`` (names in domain/providers.py) and then
implemented: ``find_created`` (reconcile an unanswered create by listing), ``cancel``,
``delete``, ``remix`` (a `CreateRequest` with ``remix_source``), ``variants``
(thumbnail, spritesheet), ``image_input``, ``import`` (``lookup`` by remote id).
Credentials that change per request (a signed JWT, an OAuth token) go in the
adapter's ``HttpApi.auth_headers``, which is asked on every request.

Plug-ins: a package registers an object (a module will do) in the entry-point group
``sora_cli.providers`` under the provider's name; it satisfies `ProviderPlugin`:
``capabilities``, ``key_env`` (the variable of its key, or None), ``description``,
``models`` (listed by `sora models`) and ``make(config, **http) -> Provider`` with a
`PluginConfig`. ``http`` are the `HttpApi` options tests inject (pass them on).

What an adapter learns about its server (a named endpoint that takes only multipart
creates, or has no list) it keeps through the `Memory` it is given: the runner's is
the job store's ``meta`` table, shared by every runner of the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from sora_cli.domain.jobs import Job, JobError
from sora_cli.providers.content import ContentStream
from sora_cli.providers.wire import OnAttempt


class RemoteState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    GONE = "gone"  # the provider no longer has the job or its result


@dataclass(frozen=True)
class ImageInput:
    """A job's image: a URL, or the bytes of its checked local copy."""

    url: str | None = None
    name: str = ""
    data: bytes = b""
    mime: str = ""


@dataclass(frozen=True)
class CreateRequest:
    job: Job
    image: ImageInput | None = None
    remix_source: str | None = None  # the remote id of the video a remix job remixes


@dataclass(frozen=True)
class Polled:
    state: RemoteState
    remote_status: str  # the provider's own word for it, shown to the user
    progress: int | None = None  # 0..100, when the provider says
    queue_position: int | None = None
    error: JobError | None = None  # why it failed (FAILED, CANCELLED, GONE)
    result: str | None = None  # where the result is (a URL, a file id...)
    expires_at: float | None = None  # when the result goes, on our clock
    poll_after: float | None = None  # the provider's hint, in seconds
    request_id: str | None = None


@dataclass(frozen=True)
class Created:
    remote_id: str
    handle: Mapping[str, Any] | None = None
    polled: Polled | None = None  # when the create's answer already says the state


@dataclass(frozen=True)
class Found:
    """What find_created found. Neither `created`, `undecided` nor `later`: the provider's
    list provably shows no job made by the attempt, so sending again is safe."""

    created: Created | None = None  # the job the unanswered create made: adopt it
    others: tuple[str, ...] = ()  # further candidates, not adopted (named for the user)
    undecided: str | None = None  # it can never tell: the job fails create_unconfirmed
    later: bool = False  # it cannot tell yet: look again later; nothing is sent


@runtime_checkable
class Provider(Protocol):
    name: str
    capabilities: frozenset[str]

    async def create(self, request: CreateRequest, *, on_attempt: OnAttempt) -> Created: ...

    async def poll(self, job: Job, *, on_attempt: OnAttempt) -> Polled: ...

    def open_result(self, job: Job, *, variant: str = "video", offset: int = 0
                    ) -> AbstractAsyncContextManager[ContentStream]: ...

    def result_path(self, job: Job, variant: str = "video") -> str:
        """What the attempt log names a result download by (never a signed query)."""
        ...

    def where(self, job: Job) -> str: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class FindsCreated(Protocol):
    async def find_created(self, request: CreateRequest, *, taken: Callable[[str], bool],
                           on_attempt: OnAttempt) -> Found: ...


@runtime_checkable
class Cancels(Protocol):
    async def cancel(self, job: Job, *, on_attempt: OnAttempt | None = None) -> str:
        """Stop the remote job; returns a note for the user (it may have run already)."""
        ...


@runtime_checkable
class Deletes(Protocol):
    async def delete(self, job: Job, *, on_attempt: OnAttempt | None = None) -> bool:
        """Delete the remote video; False when it was already gone."""
        ...


@dataclass(frozen=True)
class Looked:
    """A remote job found by its id, for `sora import`."""

    remote_id: str
    prompt: str
    model: str
    polled: Polled
    submitted_at: float | None = None
    handle: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None


@runtime_checkable
class LooksUp(Protocol):
    async def lookup(self, remote_id: str, *, on_attempt: OnAttempt | None = None
                     ) -> Looked: ...


@dataclass(frozen=True, repr=False)
class PluginConfig:
    """What sora hands a plug-in's ``make``: its `[providers.NAME]` table, read."""

    name: str  # the provider's name (the prefix of its model references)
    base_url: str | None  # the table's base_url, if any
    api_key: str | None  # from the variable the table or the plug-in names
    timeout: float = 60.0
    max_retries: int = 5
    ca_bundle: str | None = None
    options: Mapping[str, Any] | None = None  # the table's other keys

    def __repr__(self) -> str:
        return f"PluginConfig(name={self.name!r}, base_url={self.base_url!r}, api_key=***)"


@runtime_checkable
class ProviderPlugin(Protocol):
    """What an entry point of the ``sora_cli.providers`` group loads."""

    capabilities: frozenset[str]
    key_env: str | None
    description: str
    models: tuple[str, ...]

    def make(self, config: PluginConfig, **http: Any) -> Provider: ...


class Memory(Protocol):
    """Small facts an adapter learned about its server, kept across processes."""

    def recall(self, key: str) -> str | None: ...

    def remember(self, key: str, value: str) -> None: ...


def capable(adapter: object, capability: str) -> bool:
    return capability in getattr(adapter, "capabilities", frozenset())
