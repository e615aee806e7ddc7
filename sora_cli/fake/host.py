"""What the fake's request handlers see of the server that runs them: a small
interface, so that handlers never reach into the server's private state (and the
modules that define them never import the server)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from email.message import Message
from typing import Any, Protocol

from sora_cli.fake.faults import Fault
from sora_cli.fake.options import FakeOptions
from sora_cli.fake.state import Backend


class Host(Protocol):
    """The fake server, as its handlers use it."""

    options: FakeOptions
    backend: Backend

    def activity(self) -> AbstractContextManager[None]:
        """Held while a request is being answered (the idle exit waits for it)."""
        ...

    def pause(self, seconds: float) -> bool:
        """Wait up to `seconds`; True at once when the server is stopping."""
        ...

    def add_faults(self, *faults: Fault) -> None: ...

    def expected_sha256(self, video_id: str, variant: str = "video") -> str | None: ...

    @property
    def root_url(self) -> str:
        """The main origin (the Videos contract under /v1, fal under /fal, ...)."""
        ...

    @property
    def cdn_url(self) -> str:
        """The second origin: results' CDN and fal's platform API."""
        ...

    def urls(self) -> dict[str, object]: ...


class HostServer(Protocol):
    """The HTTP server object a handler gets as `self.server`."""

    fake: Host
    aux: bool  # the second origin (CDN, fal's platform API), not the main one


class Responder(Protocol):
    """A request handler, as the family modules (fal.py, replicate.py) use it."""

    command: str
    server: HostServer
    headers: Message  # the request's

    def authorize_key(self, scheme: str) -> None: ...

    def offered(self, key: str) -> None:
        """The credential the request carried (a Kling JWT, a Google token), checked by
        the family: what a fault's text may quote as {api_key}."""
        ...

    def json_body(self, body: bytes) -> dict[str, Any]: ...

    def take_fault(self, route: str, prompt: str | None) -> Fault | None: ...

    def stall(self, fault: Fault) -> None: ...

    def after_create(self, fault: Fault | None) -> None: ...

    def send_json(self, status: int, payload: dict[str, object],
                  headers: dict[str, str] | None = None) -> None: ...

    def send_empty(self, status: int) -> None:
        """An answer without a body (Runway's and Luma's 204 to a DELETE)."""
        ...

    def header(self, name: str) -> str | None:
        """A request header (Runway's X-Runway-Version)."""
        ...

    def serve_bytes(self, video_id: str, variant: str, size: int, kind: str,
                    fault: Fault | None, *, real: bool) -> None:
        """A result's bytes, with Range and the content faults (GCS objects)."""
        ...
