"""Running `sora serve`: bind, serve with uvicorn, print the base URL (the first stdout
line) once the application is up and SIGINT/SIGTERM are handled, serve until one of
them, then end the event streams and close the store (exit 0).

The socket is bound here (not by uvicorn) so that `--port 0` can print the port the
kernel picked; it listens from the start, so a client that connects at once waits in
the backlog rather than being refused.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Callable, Generator
from types import FrameType
from typing import TextIO

import uvicorn

from sora_cli.config import Settings
from sora_cli.errors import InvalidInput, SoraError
from sora_cli.serve.app import create_app
from sora_cli.serve.contexts import Render
from sora_cli.serve.events import Hub
from sora_cli.serve.gate import Access


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0: a free port); SoraError if it cannot be."""
    if not 0 <= port <= 65535:
        raise InvalidInput(f"--port must be 0 to 65535 (got {port})")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise SoraError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise SoraError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, whose signals also end the event streams at once (uvicorn
    would wait for them) and which exits 0 instead of re-raising the signal."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        sigs = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in sigs}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._on_exit()


def run(settings: Settings, render: Render, *, host: str, port: int, heartbeat: float = 15.0,
        out: TextIO | None = None) -> int:
    """Serve until stopped; 0 after a clean stop."""
    access = Access.for_bind(host, settings.serve_token)  # refuse before binding anything
    sock = bind(host, port)
    stream = out if out is not None else sys.stdout

    def announce() -> None:  # once signals stop the server cleanly: the URL says "ready"
        stream.write(base_url(sock) + "\n")
        stream.flush()

    app = create_app(settings, access, render, heartbeat=heartbeat, on_ready=announce)
    hub: Hub = app.state.hub
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False,
                            server_header=False, timeout_graceful_shutdown=5)
    server = _Server(config, hub.close_soon)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
