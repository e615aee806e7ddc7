"""Requests to the fake server: the API routes of each family (the Videos contract under
``/v1``, fal under ``/fal`` (fal.py), Replicate under ``/replicate`` (replicate.py),
Vertex under ``/vertex`` (vertex.py), Kling under ``/kling`` (kling.py)), the second
origin's routes (the CDN, fal's platform API, Google's token endpoint and GCS:
google.py), with the faults that strike them, and the ``/_fake`` control routes (no
auth, no faults, not logged)."""

from __future__ import annotations

import socket
import traceback
from http.server import ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from sora_cli.fake.body import BodyError, parse_body
from sora_cli.fake.content import CONTENT_TYPES, content_size
from sora_cli.fake.dialects import (
    check_encoding,
    create_answer,
    extra_fields,
    needs_auth,
    numeric_seconds,
)
from sora_cli.fake.errors import ApiFailure, fault_failure
from sora_cli.fake.fal import fal_api, fal_platform, fal_route
from sora_cli.fake.faults import DEFAULT_STALL_MS, HUGE_DEFAULT, Dropped, Fault, faults_from_json
from sora_cli.fake.google import register_key, storage_api, token_endpoint
from sora_cli.fake.host import Host
from sora_cli.fake.hostile import HostileHandler
from sora_cli.fake.kling import kling_api, kling_route
from sora_cli.fake.luma import luma_api, luma_route
from sora_cli.fake.minimax import minimax_api, minimax_route
from sora_cli.fake.replicate import replicate_api, replicate_route
from sora_cli.fake.routes import resolve
from sora_cli.fake.runway import runway_api, runway_route
from sora_cli.fake.signed import SIGNED_FAMILIES, check_signed
from sora_cli.fake.validate import validate_create
from sora_cli.fake.vertex import vertex_api, vertex_route
from sora_cli.fake.wire import VERBOSE


class _Answered(Exception):
    """The answer is already sent (a `huge` fault)."""


# The families served under a path prefix of their own (`/runway/...`): their route
# names for the log, and their handlers (each module says what it serves).
FAMILIES: Final = {"runway": (runway_route, runway_api), "luma": (luma_route, luma_api),
                   "minimax": (minimax_route, minimax_api), "kling": (kling_route, kling_api)}
# The families whose results the CDN serves (Vertex's are in GCS or inline)
CDN_FAMILIES: Final = ("fal", "replicate", "runway", "luma", "minimax", "kling")


class Handler(HostileHandler):
    def do_GET(self) -> None:
        self._handle()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def _handle(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        self._logged = not url.path.startswith("/_fake/")
        self._sent = 0
        self._family = _family(url.path, self.server.aux)
        self._route = None
        self._reset_hostile()
        with fake.activity():
            try:
                body = self._read_body()
                query = dict(parse_qsl(url.query))
                if not self._logged:
                    self._control(url.path, query, body)
                elif self.server.aux:
                    self._aux(url.path, query, body)
                elif self._family == "fal":
                    self._route = fal_route(self.command, url.path)
                    fal_api(self, url.path, body)
                elif self._family == "replicate":
                    self._route = replicate_route(self.command, url.path)
                    replicate_api(self, url.path, query, body)
                elif self._family == "vertex":
                    self._route = vertex_route(self.command, url.path)
                    vertex_api(self, url.path, body)
                elif self._family in FAMILIES:
                    route, api = FAMILIES[self._family]
                    self._route = route(self.command, url.path)
                    api(self, url.path, query, body)
                else:
                    self._api(url.path, query, body)
            except ApiFailure as failure:
                self._send_json(*failure.answer(self._family), failure.headers)
            except _Answered:
                pass
            except (Dropped, ConnectionError, TimeoutError):
                self.close_connection = True
            except Exception as error:  # a bug here must not pass for an injected fault
                traceback.print_exc()
                if not self._sent:
                    bug = ApiFailure(500, f"fake server bug: {error!r}")
                    self._send_json(500, bug.body(self._family))
            finally:
                if not self._sent:  # a drop: logged before the connection closes
                    self._record(0)

    def _authorize(self) -> None:
        options = self.server.fake.options
        if not needs_auth(options.dialect, options.api_key):
            self._offered_key = ""
            return
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

    # -- what every family uses (the `host.Responder` the family modules see) ---------

    def send_json(self, status: int, payload: dict[str, object],
                  headers: dict[str, str] | None = None) -> None:
        self._send_json(status, payload, headers)

    def send_empty(self, status: int) -> None:
        self._start(status, {"Content-Length": "0"})

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if isinstance(value, str) else None

    def serve_bytes(self, video_id: str, variant: str, size: int, kind: str,
                    fault: Fault | None, *, real: bool) -> None:
        self._serve_bytes(video_id, variant, size, kind, fault, real=real)

    def offered(self, key: str) -> None:
        self._offered_key = key

    def authorize_key(self, scheme: str) -> None:
        """`Authorization: {scheme} KEY` (fal: Key, Replicate: Bearer), else a 401."""
        given, _, token = self.headers.get("Authorization", "").partition(" ")
        self._offered_key = token.strip()
        expected = self.server.fake.options.api_key
        if given != scheme or not token.strip() or (expected is not None
                                                     and token.strip() != expected):
            raise ApiFailure(401, "Unauthorized: a valid API key is required"
                             if self._family == "fal" else
                             "You did not pass a valid authentication token")

    def json_body(self, body: bytes) -> dict[str, Any]:
        try:
            fields = parse_body("application/json", body)
        except BodyError as error:
            raise ApiFailure(400, str(error)) from None
        return fields

    def take_fault(self, route: str, prompt: str | None) -> Fault | None:
        """The fault that strikes this request: errors and drops raise, a `slow` waits,
        a `huge` answers; the others (create and content faults) go to the caller."""
        backend = self.server.fake.backend
        self._route = route
        backend.count(f"route:{route}")
        fault = backend.take_fault(route, prompt) or backend.random_fault(route)
        if fault is None:
            return None
        self._arm(fault)  # fields, headers, drip: they change the answer on its way out
        if fault.action in ("body", "gzip"):  # hostile answers, for every family
            if fault.action == "body":
                self._answer_body(fault)
            else:
                self._gzip_bomb(fault, route)
            raise _Answered
        if fault.action == "error":
            text = fault.text.replace("{api_key}", self._offered_key) if fault.text else None
            raise fault_failure(fault.status, fault.retry_after_ms, text)
        if fault.action == "drop":
            raise Dropped
        if fault.action == "slow" and route != "content":
            self.server.fake.pause((fault.delay_ms or 0) / 1000)
            return None
        if fault.action == "huge":
            self._huge(fault.size or HUGE_DEFAULT)
            raise _Answered
        return fault

    def stall(self, fault: Fault) -> None:
        self.server.fake.pause((fault.delay_ms or DEFAULT_STALL_MS) / 1000)

    def after_create(self, fault: Fault | None) -> None:
        """The create faults that strike once the job exists (it is billed)."""
        if fault is not None and fault.action == "create_then_error":
            raise fault_failure(fault.status, fault.retry_after_ms)
        if fault is not None and fault.action == "create_then_drop":
            raise Dropped
        if fault is not None and fault.action == "create_then_stall":
            self.server.fake.pause(
                (fault.retry_after_ms or fault.delay_ms or DEFAULT_STALL_MS) / 1000)
        if fault is not None and fault.action == "create_then_body":
            self._answer_body(fault)
            raise _Answered

    def _aux(self, path: str, query: dict[str, str], body: bytes) -> None:
        """The second origin: the CDN of results, fal's platform API, Google's token
        endpoint and GCS."""
        if path.startswith("/fal-platform/"):
            self._family = "fal"
            self._route = "list"
            fal_platform(self, path, query)
            return
        if path == "/token" and self.command == "POST":
            self._route = "token"
            token_endpoint(self, body)
            return
        if path.startswith("/storage/v1/b/"):
            self._family, self._route = "vertex", "content"
            storage_api(self, urlsplit(self.path).path, query)
            return
        job_id = path.removeprefix("/cdn/").removesuffix(".mp4")
        if self.command != "GET" or not path.startswith("/cdn/") or not path.endswith(".mp4"):
            raise ApiFailure(404, f"Not found: {self.command} {path}")
        backend = self.server.fake.backend
        backend.count("cdn_requests")
        if self.headers.get("Authorization") or self.headers.get("api-key"):
            backend.count("cdn_with_credentials")
        job = backend.remote.find(job_id, CDN_FAMILIES)
        if job is None or backend.remote.state(job) != "succeeded" or backend.remote.expired(job):
            raise ApiFailure(404, "Not found")
        if job.family in SIGNED_FAMILIES:
            check_signed(job.id, query)
        fault = self.take_fault("content", None)
        video_bytes = self.server.fake.options.video_bytes
        self._serve_bytes(job.id, "video", content_size("video", video_bytes),
                          CONTENT_TYPES["video"], fault, real=video_bytes is None)

    # -- the Videos contract ----------------------------------------------------------

    def _api(self, path: str, query: dict[str, str], body: bytes) -> None:
        backend = self.server.fake.backend
        if path != "/v1" and not path.startswith("/v1/"):
            raise ApiFailure(404, f"Invalid URL ({self.command} {path})")
        self._authorize()
        route, video_id = resolve(self.command, path)
        self._route = route
        backend.count(f"route:{route}")
        fields: dict[str, object] = {}
        if route in ("create", "remix"):
            if route == "create":
                check_encoding(backend.options.dialect, self.headers.get("Content-Type", ""))
            try:
                fields = parse_body(self.headers.get("Content-Type", ""), body)
            except BodyError as error:
                raise ApiFailure(400, str(error)) from None
        prompt = fields.get("prompt")
        fault = backend.take_fault(route, prompt if isinstance(prompt, str) else None)
        fault = fault or backend.random_fault(route)
        if fault is not None:
            self._arm(fault)  # fields, headers, drip: they change the answer on its way out
        if fault is not None and fault.action == "error":
            text = fault.text.replace("{api_key}", self._offered_key) if fault.text else None
            raise fault_failure(fault.status, fault.retry_after_ms, text)
        if fault is not None and fault.action == "drop":
            raise Dropped
        if fault is not None and fault.action == "slow" and route != "content":
            self.server.fake.pause((fault.delay_ms or 0) / 1000)
        if fault is not None and fault.action == "huge":
            self._huge(fault.size or HUGE_DEFAULT)
            return
        if fault is not None and fault.action in ("body", "gzip"):
            if fault.action == "body":
                self._answer_body(fault)
            else:
                self._gzip_bomb(fault, route)
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
        dialect = fake.options.dialect
        request = None if remix_of is not None else validate_create(
            fields, extra=extra_fields(dialect), numeric_seconds=numeric_seconds(dialect))
        if fault is not None and fault.action == "stall_then_create":
            fake.pause((fault.delay_ms or DEFAULT_STALL_MS) / 1000)
        if request is None:
            video = fake.backend.remix(str(remix_of), fields)
        else:
            video = fake.backend.create(request)
        if fault is not None and fault.action == "create_then_error":
            raise fault_failure(fault.status, fault.retry_after_ms)
        if fault is not None and fault.action == "create_then_drop":
            raise Dropped
        if fault is not None and fault.action == "create_then_stall":
            fake.pause((fault.retry_after_ms or fault.delay_ms or DEFAULT_STALL_MS) / 1000)
        if fault is not None and fault.action == "create_then_body":
            self._answer_body(fault)
            return
        view = create_answer(dialect, fake.backend.view(video))
        if fault is not None and fault.action == "bad_id":
            view["id"] = fault.text or "video_../../escape"
        self._send_json(200, view)

    def _content(self, video_id: str, variant: str, fault: Fault | None) -> None:
        options = self.server.fake.options
        size, kind = self.server.fake.backend.content_info(video_id, variant)
        real = options.video_bytes is None
        if options.content_redirect:
            where = f"{options.content_redirect.rstrip('/')}/_fake/cdn/{video_id}"
            query = f"variant={variant}&bytes={size}" + ("&real=1" if real else "")
            self._send_json(302, {}, {"Location": f"{where}?{query}"})
            return
        self._serve_bytes(video_id, variant, size, kind, fault, real=real)

    def _cdn(self, path: str, query: dict[str, str]) -> None:
        """Another origin's copy of the bytes: no auth needed; credentials are counted."""
        backend = self.server.fake.backend
        backend.count("cdn_requests")
        if self.headers.get("Authorization") or self.headers.get("api-key"):
            backend.count("cdn_with_credentials")
        video_id = path.removeprefix("/_fake/cdn/")
        variant = query.get("variant", "video")
        size_text = query.get("bytes", "")
        if variant not in CONTENT_TYPES or not size_text.isdigit():
            raise ApiFailure(400, "Bad CDN request.")
        self._serve_bytes(video_id, variant, int(size_text), CONTENT_TYPES[variant], None,
                          real=query.get("real") == "1")

    def _control(self, path: str, query: dict[str, str], body: bytes) -> None:
        fake = self.server.fake
        if self.command == "POST" and path == "/_fake/faults":
            faults = faults_from_json(body)
            fake.add_faults(*faults)
            self._send_json(200, {"scheduled": len(faults)})
        elif self.command == "GET" and path.startswith("/_fake/jobs/"):
            job_id = path.removeprefix("/_fake/jobs/")
            job = fake.backend.remote.find(job_id)
            if job is None:
                raise ApiFailure(404, f"No fal, Replicate, Runway, Luma, MiniMax, Vertex or "
                                 f"Kling job {job_id!r}.")
            self._send_json(200, {"id": job.id, "family": job.family, "model": job.model,
                                  "input": job.input, "state": fake.backend.remote.state(job)})
        elif self.command == "POST" and path == "/_fake/google-keys":
            register_key(self, body)
        elif self.command == "GET" and path == "/_fake/urls":
            self._send_json(200, dict(fake.urls()))
        elif self.command == "GET" and path == "/_fake/stats":
            self._send_json(200, fake.backend.stats())
        elif self.command == "GET" and path.startswith("/_fake/videos/"):
            video_id = unquote(path.removeprefix("/_fake/videos/"))
            self._send_json(200, fake.backend.inspect(video_id))
        elif self.command == "GET" and path.startswith("/_fake/cdn/"):
            self._cdn(path, query)
        elif self.command == "GET" and path.startswith("/_fake/sha256/"):
            variant = query.get("variant", "video")
            if variant not in CONTENT_TYPES:
                raise ApiFailure(400, f"Unknown variant '{variant}'.", param="variant")
            digest = fake.expected_sha256(unquote(path.removeprefix("/_fake/sha256/")), variant)
            self._send_json(200, {"sha256": digest})
        else:
            raise ApiFailure(404, f"Invalid URL ({self.command} {path})")


def _family(path: str, aux: bool) -> str:
    if path.startswith("/fal/") or (aux and path.startswith("/fal-platform/")):
        return "fal"
    if path.startswith("/replicate/"):
        return "replicate"
    if path.startswith("/vertex/"):
        return "vertex"
    prefix = path.split("/", 2)[1] if path.count("/") >= 2 else ""
    return prefix if prefix in FAMILIES and not aux else "openai"


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 stalls bursts of concurrent clients

    def __init__(self, address: tuple[str, int], fake: Host, *, aux: bool = False) -> None:
        self.fake = fake
        self.aux = aux  # the second origin: CDN and fal platform
        super().__init__(address, Handler)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        if VERBOSE:
            super().handle_error(request, client_address)
