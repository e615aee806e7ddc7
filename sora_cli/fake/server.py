"""A local stand-in for the video providers sora speaks to, with fault injection: the
Videos API ("Sora 2" contract) under ``/v1``, fal's queue API under ``/fal``,
Replicate's predictions API under ``/replicate``, Runway's task API under ``/runway``,
Luma's Dream Machine API under ``/luma/dream-machine/v1`` and MiniMax's video API under
``/minimax`` (fal.py, replicate.py, runway.py, luma.py and minimax.py say what they
serve), and a second origin (``aux_port``) with the CDN their results are fetched from
and fal's platform API (``/fal-platform/v1``). ``GET /_fake/urls`` names them all.

Stdlib only, usable in-process (``with FakeServer(FakeOptions(job_seconds=0.3)) as s:``)
and as a subprocess (``python -m sora_cli.fake.server --idle-exit 30``; the base URL is
the first line of stdout). Jobs progress by elapsed time: queued for the first tenth of
``job_seconds``, then in_progress, then completed (or failed, for prompts containing
``fail_prompt``).

Faults are either scheduled (``add_faults`` or ``POST /_fake/faults``), consumed in
order, or random (``error_rate`` with ``seed``). Random faults on a create always strike
before the video is created, so they never make duplicates by themselves; the
``create_then_*`` faults exist to test a client's handling of an ambiguous create.
The ``/_fake`` control routes need no auth, never get faults and are not logged;
``GET /_fake/videos/{id}`` shows a video as the fake keeps it, with the
``input_reference`` it was created with (a file part's name, content type, size,
sha256 and pixel size) and whether it was deleted. As the real service, a reference
image whose pixel size differs from ``size`` is refused ("Inpaint image must match
the requested width and height").
Quiet by default; ``SORA_FAKE_VERBOSE=1`` logs every request to stderr.

Fault actions (``route`` narrows where they strike, ``prompt`` to one create or
remix; the create-only actions strike remixes too, which are billed creates):

- ``error``: an error answer (``status``, ``retry_after_ms`` hints; ``text`` replaces the
  message, with ``{api_key}`` standing for the key the client offered);
- ``drop``: close the connection before anything happens;
- ``create_then_error`` / ``create_then_drop`` / ``create_then_stall``: create the video,
  then answer an error, drop, or wait ``retry_after_ms`` (or ``delay_ms``) before answering;
- ``stall_then_create``: wait ``delay_ms``, then create and answer (a create that lands
  after the client gave up);
- ``bad_id``: create the video but answer with ``text`` as its id;
- ``truncate``: send half of the content, then drop;
- ``slow``: wait ``delay_ms`` before answering; on content, between every 64 KiB block;
- ``huge``: answer 200 with a JSON body of ``size`` bytes (default 64 MiB), without a
  Content-Length;
- hostile answers (``body``, ``create_then_body``, ``patch``, ``headers``, ``drip``,
  ``gzip``): see `sora_cli.fake.hostile`.

Options beyond faults: ``clock_offset`` shifts the server's clock (the timestamps it
reports and its Date header); ``fault_mix`` draws random faults with a probability per
kind; ``content_redirect`` answers content requests with a 302 to another server's
``/_fake/cdn/{id}`` route, which serves any video's bytes and counts the requests that
arrived with credentials; ``tls_cert``/``tls_key`` serve HTTPS.

The fake is split by what each part owns: `fake_options` (options and command line),
`fake_faults` (faults and their choice), `fake_state` (the in-memory backend),
`fake_routes`, `fake_wire` and `fake_http` (the HTTP side), `fake_content`, `fake_body`,
`fake_validate` and `fake_errors` (payloads). This module is the public entry point and
re-exports the names other code imports from it.
"""

from __future__ import annotations

import signal
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType

from sora_cli.fake.content import content_sha256, content_size
from sora_cli.fake.faults import (
    ACTIONS,
    CREATE_ONLY,
    DEFAULT_STALL_MS,
    HUGE_DEFAULT,
    MIX_KINDS,
    ROUTES,
    Fault,
)
from sora_cli.fake.faults import fault_mix as _fault_mix
from sora_cli.fake.http import HttpServer
from sora_cli.fake.jobs import RemoteJob
from sora_cli.fake.options import FakeOptions, build_parser
from sora_cli.fake.state import MODERATION, Backend
from sora_cli.fake.wire import MAX_BODY, VERBOSE

__all__ = [
    "ACTIONS",
    "CREATE_ONLY",
    "DEFAULT_STALL_MS",
    "HUGE_DEFAULT",
    "MAX_BODY",
    "MIX_KINDS",
    "MODERATION",
    "ROUTES",
    "VERBOSE",
    "FakeOptions",
    "FakeServer",
    "Fault",
    "_fault_mix",
    "main",
]


class FakeServer:
    """The fake Videos API on a local port; `base_url` ends with /v1."""

    def __init__(
        self, options: FakeOptions | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.options = options if options is not None else FakeOptions()
        self.backend = Backend(self.options)
        self._host = host
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._active = 0
        self._last_activity = time.monotonic()
        self._sha256: dict[tuple[str, str, int, bool], str] = {}
        self._httpd = HttpServer((host, port), self)
        self._aux = HttpServer((host, self.options.aux_port), self, aux=True)
        self._threads: list[threading.Thread] = []
        self._scheme = "http"
        if self.options.tls_cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.options.tls_cert, self.options.tls_key)
            for httpd in (self._httpd, self._aux):
                httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
            self._scheme = "https"

    @property
    def base_url(self) -> str:
        """The Videos contract's base URL (ends with /v1)."""
        return f"{self.root_url}/v1"

    @property
    def root_url(self) -> str:
        return f"{self._scheme}://{self._host}:{self._httpd.server_port}"

    @property
    def cdn_url(self) -> str:
        """The second origin: results' CDN (`/cdn/...`) and fal's platform API."""
        return f"{self._scheme}://{self._host}:{self._aux.server_port}"

    def urls(self) -> dict[str, object]:
        """Where each family is served, as sora's settings name them."""
        return {"openai": self.base_url, "fal": f"{self.root_url}/fal",
                "fal_platform": f"{self.cdn_url}/fal-platform/v1",
                "replicate": f"{self.root_url}/replicate", "cdn": f"{self.cdn_url}/cdn",
                "runway": f"{self.root_url}/runway",
                "luma": f"{self.root_url}/luma/dream-machine/v1",
                "minimax": f"{self.root_url}/minimax",
                "vertex": f"{self.root_url}/vertex", "google_token": f"{self.cdn_url}/token",
                "gcs": self.cdn_url, "kling": f"{self.root_url}/kling"}

    def start(self) -> FakeServer:
        # Under the stop lock: a stop() from another thread (serve_forever's caller) must
        # not close the sockets between two thread starts; it would leave a serving thread
        # spinning on a closed socket. A stopped server is not started again.
        with self._stop_lock:
            if self._thread is None and not self._stopped:
                self._start_threads()
        return self

    def _start_threads(self) -> None:
        self._last_activity = time.monotonic()
        for httpd, name in ((self._httpd, "sora-fake-server"), (self._aux, "sora-fake-aux")):
            thread = threading.Thread(target=httpd.serve_forever,
                                      kwargs={"poll_interval": 0.05}, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._thread = self._threads[0]
        if self.options.idle_exit is not None:
            threading.Thread(
                target=self._watch_idle,
                args=(self.options.idle_exit,),
                name="sora-fake-idle",
                daemon=True,
            ).start()

    def stop(self) -> None:
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
            self._done.set()
            if self._thread is not None:
                for httpd in (self._httpd, self._aux):
                    httpd.shutdown()
                for thread in self._threads:
                    thread.join()
            self._httpd.server_close()
            self._aux.server_close()

    def request_stop(self) -> None:
        """Ask `serve_forever` to return; safe in a signal handler."""
        self._done.set()

    def serve_forever(self) -> None:
        self.start()
        while not self._done.wait(0.1):
            pass
        self.stop()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- test helpers
    def create_count(self, prompt: str | None = None) -> int:
        return self.backend.create_count(prompt)

    def add_faults(self, *faults: Fault) -> None:
        self.backend.add_faults(faults)

    def expected_sha256(self, video_id: str, variant: str = "video") -> str:
        real = self.options.video_bytes is None
        key = (video_id, variant, content_size(variant, self.options.video_bytes), real)
        with self._lock:
            known = self._sha256.get(key)
        if known is None:
            known = content_sha256(*key[:3], real=real)
            with self._lock:
                self._sha256[key] = known
        return known

    def request_log(self) -> list[tuple[str, str, int]]:
        return self.backend.request_log()

    def register_google_key(self, email: str, n: int, e: int) -> None:
        """A service account whose assertions the token endpoint takes (RSA n, e)."""
        self.backend.google.register(email, n, e)

    def remote_job(self, job_id: str) -> RemoteJob | None:
        """A fal, Replicate, Vertex or Kling job as the fake keeps it."""
        return self.backend.remote.find(job_id)

    # -- idle tracking
    def pause(self, seconds: float) -> bool:
        """Wait up to `seconds`; True at once when the server is stopping."""
        return self._done.wait(seconds)

    @contextmanager
    def activity(self) -> Iterator[None]:
        with self._lock:
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                self._last_activity = time.monotonic()

    def _watch_idle(self, idle: float) -> None:
        while not self._done.wait(max(0.01, min(0.05, idle))):
            with self._lock:
                quiet = self._active == 0 and time.monotonic() - self._last_activity >= idle
            if quiet:
                self.stop()
                return


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0.0 <= args.error_rate <= 1.0:
        parser.error("--error-rate must be between 0 and 1")
    options = FakeOptions(
        job_seconds=args.job_seconds,
        fail_prompt=args.fail_prompt,
        error_rate=args.error_rate,
        seed=args.seed,
        video_bytes=args.video_bytes,
        expire_seconds=args.expire_seconds,
        poll_after_ms=args.poll_after_ms if args.poll_after_ms >= 0 else None,
        api_key=args.api_key,
        idle_exit=args.idle_exit,
        range_support=not args.no_range,
        clock_offset=args.clock_offset,
        fault_mix=args.fault_mix,
        content_redirect=args.content_redirect,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        aux_port=args.aux_port,
        url_seconds=args.url_seconds,
        dialect=args.dialect,
        quirks=tuple(args.quirk),
        token_seconds=args.token_seconds,
    )
    if args.kling_keys:
        access, _, secret = args.kling_keys.partition(":")
        options.kling_access_key, options.kling_secret_key = access, secret
    try:
        server = FakeServer(options, host=args.host, port=args.port)
    except OSError as error:  # ssl.SSLError included
        print(f"fake-server: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1

    def on_signal(signum: int, frame: FrameType | None) -> None:
        server.request_stop()

    in_main = threading.current_thread() is threading.main_thread()
    previous = (
        {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        if in_main
        else {}
    )
    try:
        print(server.base_url, flush=True)
        server.serve_forever()
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
