"""A local stand-in for the Videos API ("Sora 2" contract), with fault injection.

Stdlib only, usable in-process (``with FakeServer(FakeOptions(job_seconds=0.3)) as s:``)
and as a subprocess (``python -m sora_cli.fake_server --idle-exit 30``; the base URL is
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
  Content-Length.

Options beyond faults: ``clock_offset`` shifts the server's clock (the timestamps it
reports and its Date header); ``fault_mix`` draws random faults with a probability per
kind; ``content_redirect`` answers content requests with a 302 to another server's
``/_fake/cdn/{id}`` route, which serves any video's bytes and counts the requests that
arrived with credentials; ``tls_cert``/``tls_key`` serve HTTPS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from sora_cli.fake_content import (
    CONTENT_TYPES,
    ApiFailure,
    BodyError,
    CreateRequest,
    content_sha256,
    content_size,
    fault_failure,
    iter_content,
    parse_body,
    validate_create,
    validate_remix,
)

ROUTES: Final = frozenset({"create", "retrieve", "list", "content", "delete", "remix", "*"})
ACTIONS: Final = frozenset(
    {"error", "drop", "create_then_error", "create_then_drop", "create_then_stall", "truncate",
     "stall_then_create", "bad_id", "slow", "huge"}
)
CREATE_ONLY: Final = frozenset(
    {"create_then_error", "create_then_drop", "create_then_stall", "stall_then_create", "bad_id"}
)
MIX_KINDS: Final = frozenset({"429", "500", "502", "503", "drop", "truncate"})
HUGE_DEFAULT: Final = 64 * 1024 * 1024
MODERATION: Final = {
    "code": "moderation_blocked",
    "message": "Your request was blocked by our moderation system.",
}
MAX_BODY: Final = 64 * 1024 * 1024
DEFAULT_STALL_MS: Final = 10_000
VERBOSE: Final = os.environ.get("SORA_FAKE_VERBOSE", "") not in ("", "0")


@dataclass
class FakeOptions:
    job_seconds: float = 5.0
    fail_prompt: str | None = None
    error_rate: float = 0.0
    seed: int | None = None
    poll_after_ms: int | None = 1000
    video_bytes: int = 262144
    expire_seconds: int = 86400
    api_key: str | None = None
    idle_exit: float | None = None
    range_support: bool = True
    clock_offset: float = 0.0
    fault_mix: dict[str, float] | None = None
    content_redirect: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None


@dataclass(frozen=True)
class Fault:
    action: str
    route: str = "*"
    times: int = 1
    status: int = 500
    retry_after_ms: int | None = None
    prompt: str | None = None
    delay_ms: int | None = None
    text: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}")
        if self.route not in ROUTES:
            raise ValueError(f"unknown fault route {self.route!r}")
        numbers = (self.times, self.status, self.retry_after_ms or 0, self.delay_ms or 0,
                   self.size or 0)
        if not all(isinstance(number, int) for number in numbers):
            raise ValueError("fault times, status, retry_after_ms, delay_ms and size "
                             "must be integers")
        if self.times < 1 or not 100 <= self.status <= 599 or min(numbers[2:]) < 0:
            raise ValueError("fault times must be >= 1 and status an HTTP status")
        if self.text is not None and not isinstance(self.text, str):
            raise ValueError("fault text must be a string")

    def applies_to(self, route: str, prompt: str | None) -> bool:
        if self.route not in ("*", route):
            return False
        if self.action in CREATE_ONLY and route not in ("create", "remix"):
            return False
        if self.action == "truncate" and route != "content":
            return False
        if self.action == "huge" and route == "content":
            return False
        return self.prompt is None or (route in ("create", "remix") and prompt == self.prompt)


class _Dropped(Exception):
    """Close the connection without (the rest of) an answer."""


@dataclass
class _Video:
    id: str
    request: CreateRequest
    started: float  # monotonic, drives the status
    created: float  # wall clock
    will_fail: bool
    remixed_from: str | None = None
    deleted: bool = False


class _Backend:
    """The API's state and rules, without HTTP. Every method is thread-safe."""

    def __init__(self, options: FakeOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._videos: dict[str, _Video] = {}
        self._order: list[_Video] = []
        self._faults: list[Fault] = []  # pending, with the times left
        self._random = random.Random(options.seed)
        self._log: list[tuple[str, str, int]] = []
        self._by_route: dict[str, int] = {}
        self._counters: dict[str, int] = {}

    # -- videos
    def create(self, request: CreateRequest, remixed_from: str | None = None) -> _Video:
        fail = self.options.fail_prompt
        with self._lock:
            video = _Video(
                id="video_" + uuid.uuid4().hex,
                request=request,
                started=time.monotonic(),
                created=time.time(),
                will_fail=bool(fail and fail in request.prompt),
                remixed_from=remixed_from,
            )
            self._videos[video.id] = video
            self._order.append(video)
        return video

    def get(self, video_id: str) -> _Video:
        with self._lock:
            video = self._videos.get(video_id)
        if video is None or video.deleted:
            raise ApiFailure(
                404,
                f"Video with id '{video_id}' not found.",
                param="video_id",
                code="video_not_found",
            )
        return video

    def status(self, video: _Video) -> tuple[str, int]:
        total = self.options.job_seconds
        elapsed = time.monotonic() - video.started
        if elapsed >= total:
            return ("failed", 0) if video.will_fail else ("completed", 100)
        if elapsed < total / 10:
            return "queued", 0
        return "in_progress", min(99, max(1, int(100 * elapsed / total)))

    def view(self, video: _Video) -> dict[str, object]:
        status, progress = self.status(video)
        finished = status in ("completed", "failed")
        created_at = int(video.created + self.options.clock_offset)
        request = video.request
        return {
            "id": video.id,
            "object": "video",
            "model": request.model,
            "status": status,
            "progress": progress,
            "created_at": created_at,
            "completed_at": int(video.created + self.options.clock_offset
                                + self.options.job_seconds) if finished else None,
            "expires_at": created_at + self.options.expire_seconds
            if status == "completed"
            else None,
            "prompt": request.prompt,
            "size": request.size,
            "seconds": request.seconds,
            "remixed_from_video_id": video.remixed_from,
            "error": dict(MODERATION) if status == "failed" else None,
        }

    def list_page(self, query: dict[str, str]) -> dict[str, object]:
        limit_text = query.get("limit", "20")
        if not limit_text.isdigit() or int(limit_text) > 100:
            raise ApiFailure(
                400,
                f"Invalid 'limit': expected an integer 0..100, got '{limit_text}'.",
                param="limit",
                code="invalid_value",
            )
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise ApiFailure(
                400,
                f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.",
                param="order",
                code="invalid_value",
            )
        with self._lock:
            ordered = list(self._order) if order == "asc" else self._order[::-1]
        start = 0
        after = query.get("after")
        if after:
            ids = [video.id for video in ordered]
            if after not in ids:
                raise ApiFailure(
                    400,
                    f"Invalid 'after': no video with id '{after}'.",
                    param="after",
                    code="invalid_value",
                )
            start = ids.index(after) + 1
        rest = [video for video in ordered[start:] if not video.deleted]
        page = [self.view(video) for video in rest[: int(limit_text)]]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(rest) > len(page),
        }

    def delete(self, video_id: str) -> dict[str, object]:
        video = self.get(video_id)
        status, _ = self.status(video)
        if status not in ("completed", "failed"):
            raise ApiFailure(
                400,
                f"Video '{video_id}' is {status}; only completed or failed videos can be deleted.",
                param="video_id",
            )
        with self._lock:
            video.deleted = True
        return {"id": video_id, "object": "video.deleted", "deleted": True}

    def remix(self, video_id: str, body: dict[str, object]) -> _Video:
        source = self.get(video_id)
        status, _ = self.status(source)
        if status != "completed":
            raise ApiFailure(
                400,
                f"Video '{video_id}' is {status}; only completed videos can be remixed.",
                param="video_id",
            )
        prompt = validate_remix(body)
        old = source.request
        return self.create(CreateRequest(prompt, old.model, old.seconds, old.size), video_id)

    def inspect(self, video_id: str) -> dict[str, object]:
        """What the fake knows of a video (deleted ones too), for tests: its view, the
        input_reference it was created with, whether it was deleted."""
        with self._lock:
            video = self._videos.get(video_id)
        if video is None:
            raise ApiFailure(404, f"Video with id '{video_id}' not found.")
        return {**self.view(video), "input_reference": video.request.reference,
                "deleted": video.deleted}

    def content_info(self, video_id: str, variant: str) -> tuple[int, str]:
        if variant not in CONTENT_TYPES:
            raise ApiFailure(
                400,
                f"Invalid value: '{variant}'. Supported values are: 'video', "
                "'thumbnail', and 'spritesheet'.",
                param="variant",
                code="invalid_value",
            )
        video = self.get(video_id)
        status, _ = self.status(video)
        if status != "completed":
            raise ApiFailure(
                404,
                f"Video '{video_id}' is {status}; its content is not available.",
                code="video_not_ready",
            )
        if time.time() >= int(video.created) + self.options.expire_seconds:
            raise ApiFailure(
                404, f"The assets of video '{video_id}' have expired.", code="video_expired"
            )
        return content_size(variant, self.options.video_bytes), CONTENT_TYPES[variant]

    # -- faults and bookkeeping
    def add_faults(self, faults: tuple[Fault, ...]) -> None:
        with self._lock:
            self._faults.extend(faults)

    def take_fault(self, route: str, prompt: str | None) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.applies_to(route, prompt):
                    if fault.times > 1:
                        self._faults[index] = replace(fault, times=fault.times - 1)
                    else:
                        del self._faults[index]
                    return fault
        return None

    def count(self, name: str) -> None:
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + 1

    def _mixed_fault(self, route: str, mix: dict[str, float]) -> Fault | None:
        with self._lock:
            draw = self._random.random()
            delay_ms = self._random.randint(100, 500)
        kind = None
        for name, probability in mix.items():
            if draw < probability:
                kind = name
                break
            draw -= probability
        if kind is None or (kind == "truncate" and route != "content"):
            return None
        if kind in ("drop", "truncate"):
            return Fault(kind, route)
        hint = delay_ms if kind == "429" else None
        return Fault("error", route, status=int(kind), retry_after_ms=hint)

    def random_fault(self, route: str) -> Fault | None:
        if self.options.fault_mix:
            return self._mixed_fault(route, self.options.fault_mix)
        if self.options.error_rate <= 0:
            return None
        kinds = ["429", "500", "503", "drop"] + (["truncate"] if route == "content" else [])
        with self._lock:
            if self._random.random() >= self.options.error_rate:
                return None
            kind = self._random.choice(kinds)
            delay_ms = self._random.randint(100, 500)
        if kind in ("drop", "truncate"):
            return Fault(kind, route)
        hint = delay_ms if kind == "429" else None  # 5xx without hints: clients back off alone
        return Fault("error", route, status=int(kind), retry_after_ms=hint)

    def record(self, method: str, path: str, status: int) -> None:
        route = _route_name(method, path)
        with self._lock:
            self._log.append((method, path, status))
            self._by_route[route] = self._by_route.get(route, 0) + 1

    def request_log(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return list(self._log)

    def create_count(self, prompt: str | None = None) -> int:
        with self._lock:
            return sum(1 for v in self._order if prompt is None or v.request.prompt == prompt)

    def stats(self) -> dict[str, object]:
        with self._lock:
            by_prompt: dict[str, int] = {}
            for video in self._order:
                by_prompt[video.request.prompt] = by_prompt.get(video.request.prompt, 0) + 1
            return {
                "creates": len(self._order),
                "creates_by_prompt": by_prompt,
                "requests": len(self._log),
                "requests_by_route": dict(self._by_route),
                "faults_pending": len(self._faults),
                "counters": dict(self._counters),
            }


_VIDEO_PATH: Final = re.compile(r"/v1/videos/([^/]+)(/content|/remix)?")
_VIDEO_ROUTES: Final = {
    ("GET", ""): "retrieve",
    ("DELETE", ""): "delete",
    ("GET", "/content"): "content",
    ("POST", "/remix"): "remix",
}


def _resolve(method: str, path: str) -> tuple[str, str]:
    """(route, video id) of an API request; 404 for anything else."""
    route: str | None = None
    video_id = ""
    if path == "/v1/videos":
        route = {"POST": "create", "GET": "list"}.get(method)
    elif match := _VIDEO_PATH.fullmatch(path):
        video_id = match[1]
        route = _VIDEO_ROUTES.get((method, match[2] or ""))
    if route is None:
        raise ApiFailure(404, f"Invalid URL ({method} {path})")
    return route, video_id


def _route_name(method: str, path: str) -> str:
    """The route a logged request went to ("create", "retrieve"...), or "other"."""
    try:
        return _resolve(method, path)[0]
    except ApiFailure:
        return "other"


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) of a `bytes=N-` or `bytes=N-M` range; None to ignore the header."""
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", (header or "").strip())
    if match is None:
        return None
    first = int(match[1])
    last = int(match[2]) if match[2] else size - 1
    if first >= size:
        raise ApiFailure(
            416, "Requested range not satisfiable.", headers={"Content-Range": f"bytes */{size}"}
        )
    return (first, min(last + 1, size)) if last >= first else None


def _faults_from_json(body: bytes) -> list[Fault]:
    try:
        items = json.loads(body)["faults"]
        faults = [Fault(**item) for item in items]
    except (ValueError, KeyError, TypeError) as error:
        raise ApiFailure(400, f"Invalid faults: {error}") from None
    return faults


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sora-fake/1.0"
    timeout = 60
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms to every answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def log_message(self, format: str, *args: object) -> None:
        if VERBOSE:
            super().log_message(format, *args)

    def date_time_string(self, timestamp: float | None = None) -> str:
        now = time.time() if timestamp is None else timestamp
        return super().date_time_string(now + self.server.fake.options.clock_offset)

    def _handle(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        self._logged = not url.path.startswith("/_fake/")
        self._sent = 0
        with fake._activity():
            try:
                body = self._read_body()
                if not self._logged:
                    self._control(url.path, dict(parse_qsl(url.query)), body)
                else:
                    self._api(url.path, dict(parse_qsl(url.query)), body)
            except ApiFailure as failure:
                self._send_json(failure.status, failure.envelope(), failure.headers)
            except (_Dropped, ConnectionError, TimeoutError):
                self.close_connection = True
            except Exception as error:  # a bug here must not pass for an injected fault
                traceback.print_exc()
                if not self._sent:
                    self._send_json(500, ApiFailure(500, f"fake server bug: {error!r}").envelope())
            finally:
                if not self._sent:  # a drop: logged before the connection closes
                    self._record(0)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        length = self.headers.get("Content-Length", "0").strip() or "0"
        if not length.isdigit() or int(length) > MAX_BODY:
            self.close_connection = True
            raise ApiFailure(413 if length.isdigit() else 400, "Bad or too large request body.")
        return self.rfile.read(int(length))

    def _authorize(self) -> None:
        offered: list[str] = []
        self._offered_key = ""
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            offered.append(token.strip())
        if api_key := self.headers.get("api-key", "").strip():
            offered.append(api_key)
        self._offered_key = offered[0] if offered else ""
        expected = self.server.fake.options.api_key
        if not offered or (expected is not None and expected not in offered):
            raise ApiFailure(401, "Incorrect API key provided.", code="invalid_api_key")

    def _api(self, path: str, query: dict[str, str], body: bytes) -> None:
        backend = self.server.fake._backend
        if path != "/v1" and not path.startswith("/v1/"):
            raise ApiFailure(404, f"Invalid URL ({self.command} {path})")
        self._authorize()
        route, video_id = _resolve(self.command, path)
        backend.count(f"route:{route}")
        fields: dict[str, object] = {}
        if route in ("create", "remix"):
            try:
                fields = parse_body(self.headers.get("Content-Type", ""), body)
            except BodyError as error:
                raise ApiFailure(400, str(error)) from None
        prompt = fields.get("prompt")
        fault = backend.take_fault(route, prompt if isinstance(prompt, str) else None)
        fault = fault or backend.random_fault(route)
        if fault is not None and fault.action == "error":
            text = fault.text.replace("{api_key}", self._offered_key) if fault.text else None
            raise fault_failure(fault.status, fault.retry_after_ms, text)
        if fault is not None and fault.action == "drop":
            raise _Dropped
        if fault is not None and fault.action == "slow" and route != "content":
            self.server.fake._done.wait((fault.delay_ms or 0) / 1000)
        if fault is not None and fault.action == "huge":
            self._huge(fault.size or HUGE_DEFAULT)
            return
        if route == "create":
            self._create(fields, fault)
        elif route == "retrieve":
            after = backend.options.poll_after_ms
            headers = {} if after is None else {"openai-poll-after-ms": str(after)}
            self._send_json(200, backend.view(backend.get(video_id)), headers)
        elif route == "list":
            self._send_json(200, backend.list_page(query))
        elif route == "delete":
            self._send_json(200, backend.delete(video_id))
        elif route == "remix":
            self._create(fields, fault, remix_of=video_id)
        else:
            self._content(video_id, query.get("variant", "video"), fault)

    def _create(self, fields: dict[str, object], fault: Fault | None,
                remix_of: str | None = None) -> None:
        """A create, or a remix of `remix_of` (also billed): the same faults apply."""
        fake = self.server.fake
        request = None if remix_of is not None else validate_create(fields)
        if fault is not None and fault.action == "stall_then_create":
            fake._done.wait((fault.delay_ms or DEFAULT_STALL_MS) / 1000)
        if request is None:
            video = fake._backend.remix(str(remix_of), fields)
        else:
            video = fake._backend.create(request)
        if fault is not None and fault.action == "create_then_error":
            raise fault_failure(fault.status, fault.retry_after_ms)
        if fault is not None and fault.action == "create_then_drop":
            raise _Dropped
        if fault is not None and fault.action == "create_then_stall":
            fake._done.wait((fault.retry_after_ms or fault.delay_ms or DEFAULT_STALL_MS) / 1000)
        view = fake._backend.view(video)
        if fault is not None and fault.action == "bad_id":
            view["id"] = fault.text or "video_../../escape"
        self._send_json(200, view)

    def _huge(self, size: int) -> None:
        """A 200 JSON answer of `size` bytes without a length: only the client's cap stops it."""
        self._start(200, {"Content-Type": "application/json", "Connection": "close"})
        self.close_connection = True
        self.wfile.write(b'{"id": "video_huge", "padding": "')
        block = b"x" * 65536
        for _ in range(max(size // len(block), 1)):
            self.wfile.write(block)
        self.wfile.write(b'"}')

    def _content(self, video_id: str, variant: str, fault: Fault | None) -> None:
        options = self.server.fake.options
        size, kind = self.server.fake._backend.content_info(video_id, variant)
        if options.content_redirect:
            where = f"{options.content_redirect.rstrip('/')}/_fake/cdn/{video_id}"
            self._send_json(302, {}, {"Location": f"{where}?variant={variant}&bytes={size}"})
            return
        self._serve_bytes(video_id, variant, size, kind, fault)

    def _serve_bytes(self, video_id: str, variant: str, size: int, kind: str,
                     fault: Fault | None) -> None:
        options = self.server.fake.options
        if self.headers.get("Range"):
            self.server.fake._backend.count("range_requests")
        start, end, status = 0, size, 200
        headers = {"Content-Type": kind}
        if options.range_support:
            headers["Accept-Ranges"] = "bytes"
            wanted = _byte_range(self.headers.get("Range"), size)
            if wanted is not None:
                (start, end), status = wanted, 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        truncate = fault is not None and fault.action == "truncate"
        pause = (fault.delay_ms or 0) / 1000 if fault is not None and fault.action == "slow" else 0
        stop = start + (end - start) // 2 if truncate else end
        self._start(status, headers)
        for chunk in iter_content(video_id, variant, size, start, stop):
            self.wfile.write(chunk)
            if pause and self.server.fake._done.wait(pause):
                raise _Dropped
        if stop < end:
            raise _Dropped

    def _cdn(self, path: str, query: dict[str, str]) -> None:
        """Another origin's copy of the bytes: no auth needed; credentials are counted."""
        backend = self.server.fake._backend
        backend.count("cdn_requests")
        if self.headers.get("Authorization") or self.headers.get("api-key"):
            backend.count("cdn_with_credentials")
        video_id = path.removeprefix("/_fake/cdn/")
        variant = query.get("variant", "video")
        size_text = query.get("bytes", "")
        if variant not in CONTENT_TYPES or not size_text.isdigit():
            raise ApiFailure(400, "Bad CDN request.")
        self._serve_bytes(video_id, variant, int(size_text), CONTENT_TYPES[variant], None)

    def _control(self, path: str, query: dict[str, str], body: bytes) -> None:
        fake = self.server.fake
        if self.command == "POST" and path == "/_fake/faults":
            faults = _faults_from_json(body)
            fake.add_faults(*faults)
            self._send_json(200, {"scheduled": len(faults)})
        elif self.command == "GET" and path == "/_fake/stats":
            self._send_json(200, fake._backend.stats())
        elif self.command == "GET" and path.startswith("/_fake/videos/"):
            self._send_json(200, fake._backend.inspect(path.removeprefix("/_fake/videos/")))
        elif self.command == "GET" and path.startswith("/_fake/cdn/"):
            self._cdn(path, query)
        elif self.command == "GET" and path.startswith("/_fake/sha256/"):
            variant = query.get("variant", "video")
            if variant not in CONTENT_TYPES:
                raise ApiFailure(400, f"Unknown variant '{variant}'.", param="variant")
            digest = fake.expected_sha256(path.removeprefix("/_fake/sha256/"), variant)
            self._send_json(200, {"sha256": digest})
        else:
            raise ApiFailure(404, f"Invalid URL ({self.command} {path})")

    def _record(self, status: int) -> None:
        # before the client can see the answer, so that tests may check the log at once
        if self._logged:
            self.server.fake._backend.record(self.command, urlsplit(self.path).path, status)

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self._record(status)
        self._sent = status
        self.send_response(status)
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_json(
        self, status: int, payload: dict[str, object], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        json_headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
        self._start(status, {**json_headers, **(headers or {})})
        self.wfile.write(data)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 stalls bursts of concurrent clients

    def __init__(self, address: tuple[str, int], fake: FakeServer) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        if VERBOSE:
            super().handle_error(request, client_address)


class FakeServer:
    """The fake Videos API on a local port; `base_url` ends with /v1."""

    def __init__(
        self, options: FakeOptions | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.options = options if options is not None else FakeOptions()
        self._backend = _Backend(self.options)
        self._host = host
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._active = 0
        self._last_activity = time.monotonic()
        self._sha256: dict[tuple[str, str, int], str] = {}
        self._httpd = _HttpServer((host, port), self)
        self._scheme = "http"
        if self.options.tls_cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.options.tls_cert, self.options.tls_key)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            self._scheme = "https"

    @property
    def base_url(self) -> str:
        return f"{self._scheme}://{self._host}:{self._httpd.server_port}/v1"

    def start(self) -> FakeServer:
        if self._thread is None:
            self._last_activity = time.monotonic()
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="sora-fake-server",
                daemon=True,
            )
            self._thread.start()
            if self.options.idle_exit is not None:
                threading.Thread(
                    target=self._watch_idle,
                    args=(self.options.idle_exit,),
                    name="sora-fake-idle",
                    daemon=True,
                ).start()
        return self

    def stop(self) -> None:
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
            self._done.set()
            if self._thread is not None:
                self._httpd.shutdown()
                self._thread.join()
            self._httpd.server_close()

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
        return self._backend.create_count(prompt)

    def add_faults(self, *faults: Fault) -> None:
        self._backend.add_faults(faults)

    def expected_sha256(self, video_id: str, variant: str = "video") -> str:
        key = (video_id, variant, content_size(variant, self.options.video_bytes))
        with self._lock:
            known = self._sha256.get(key)
        if known is None:
            known = content_sha256(*key)
            with self._lock:
                self._sha256[key] = known
        return known

    def request_log(self) -> list[tuple[str, str, int]]:
        return self._backend.request_log()

    # -- idle tracking
    @contextmanager
    def _activity(self) -> Iterator[None]:
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sora-fake-server", description="Serve a local fake of the Videos API."
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=0, help="0 (default) picks a free port")
    add("--job-seconds", type=float, default=FakeOptions.job_seconds)
    add("--fail-prompt", help="prompts containing this text end failed (moderation)")
    add("--error-rate", type=float, default=0.0, help="probability of a random fault")
    add("--seed", type=int)
    add(
        "--poll-after-ms",
        type=int,
        default=FakeOptions.poll_after_ms,
        help="openai-poll-after-ms on retrieve; negative sends none",
    )
    add("--video-bytes", type=int, default=FakeOptions.video_bytes)
    add("--expire-seconds", type=int, default=FakeOptions.expire_seconds)
    add("--api-key", help="require exactly this key")
    add("--idle-exit", type=float, help="stop after this many seconds without a request")
    add("--no-range", action="store_true", help="ignore Range headers on /content")
    add("--clock-offset", type=float, default=0.0,
        help="seconds added to the server's clock (its timestamps and Date header)")
    add("--fault-mix", type=_fault_mix, metavar="KIND=P,...",
        help="random faults per request, e.g. 429=0.1,500=0.1,drop=0.05,truncate=0.1 "
             f"(kinds: {', '.join(sorted(MIX_KINDS))})")
    add("--content-redirect", metavar="ROOT",
        help="answer content requests with a 302 to ROOT/_fake/cdn/{id} (another fake)")
    add("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    add("--tls-key", help="the certificate's private key (PEM)")
    return parser


def _fault_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for item in text.split(","):
        kind, _, value = item.partition("=")
        try:
            probability = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad fault mix item {item!r}") from None
        if kind.strip() not in MIX_KINDS or not 0 <= probability <= 1:
            raise argparse.ArgumentTypeError(f"bad fault mix item {item!r}")
        mix[kind.strip()] = probability
    if sum(mix.values()) > 1:
        raise argparse.ArgumentTypeError("the fault mix adds up to more than 1")
    return mix


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
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
    )
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
