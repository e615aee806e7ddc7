"""What the fake's request handlers see of the server that runs them: a small
interface, so that handlers never reach into the server's private state (and the
modules that define them never import the server)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

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


class HostServer(Protocol):
    """The HTTP server object a handler gets as `self.server`."""

    fake: Host
