"""How the fake Videos API server's answers go on the wire: status and headers (each
answer logged before the client can see it), JSON bodies, request bodies read,
and content streamed with byte ranges and the content faults (truncate, slow, huge)."""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Final
from urllib.parse import urlsplit

from sora_cli.fake.content import iter_content
from sora_cli.fake.errors import ApiFailure
from sora_cli.fake.faults import Dropped, Fault
from sora_cli.fake.host import HostServer

MAX_BODY: Final = 64 * 1024 * 1024
VERBOSE: Final = os.environ.get("SORA_FAKE_VERBOSE", "") not in ("", "0")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
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


class WireHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sora-fake/1.0"
    timeout = 60
    server: HostServer  # type: ignore[assignment]  # the HttpServer that runs us
    _logged: bool  # an API request, not a /_fake control one
    _sent: int  # the status sent, 0 before the answer starts
    _route: str | None = None  # the route name, for the request log
    _offered_key: str = ""  # the key the client sent (for faults that echo it)
    # Set per request by hostile faults (sora_cli.fake.hostile):
    _extra_headers: dict[str, str]  # added to, or replacing, the answer's headers
    _patch: dict[str, object] | None  # merged into a 2xx JSON answer
    _drip: float  # seconds between the bytes of the body (0: all at once)

    def _reset_hostile(self) -> None:
        self._extra_headers, self._patch, self._drip = {}, None, 0.0

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms to every answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        if VERBOSE:
            super().log_message(format, *args)

    def date_time_string(self, timestamp: float | None = None) -> str:
        now = time.time() if timestamp is None else timestamp
        return super().date_time_string(now + self.server.fake.options.clock_offset)

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

    def _huge(self, size: int) -> None:
        """A 200 JSON answer of `size` bytes without a length: only the client's cap stops it."""
        self._start(200, {"Content-Type": "application/json", "Connection": "close"})
        self.close_connection = True
        self.wfile.write(b'{"id": "video_huge", "padding": "')
        block = b"x" * 65536
        for _ in range(max(size // len(block), 1)):
            self.wfile.write(block)
        self.wfile.write(b'"}')

    def _serve_bytes(self, video_id: str, variant: str, size: int, kind: str,
                     fault: Fault | None, *, real: bool) -> None:
        options = self.server.fake.options
        if self.headers.get("Range"):
            self.server.fake.backend.count("range_requests")
        start, end, status = 0, size, 200
        headers = {"Content-Type": kind}
        if options.range_support:
            headers["Accept-Ranges"] = "bytes"
            wanted = byte_range(self.headers.get("Range"), size)
            if wanted is not None:
                (start, end), status = wanted, 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        truncate = fault is not None and fault.action == "truncate"
        pause = (fault.delay_ms or 0) / 1000 if fault is not None and fault.action == "slow" else 0
        stop = start + (end - start) // 2 if truncate else end
        self._start(status, headers)
        for chunk in iter_content(video_id, variant, size, start, stop, real=real):
            self._write(chunk)
            if pause and self.server.fake.pause(pause):
                raise Dropped
        if stop < end:
            raise Dropped

    def _record(self, status: int) -> None:
        # before the client can see the answer, so that tests may check the log at once
        if self._logged:
            self.server.fake.backend.record(self.command, urlsplit(self.path).path, status,
                                            self._route)

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self._record(status)
        self._sent = status
        self.log_request(status)
        self.send_response_only(status)
        extra = getattr(self, "_extra_headers", {})
        replaced = {name.lower() for name in extra}
        base = {"Server": self.version_string(), "Date": self.date_time_string(),
                "x-request-id": "req_" + uuid.uuid4().hex}
        for name, value in {**base, **headers}.items():
            if name.lower() not in replaced:
                self.send_header(name, value)
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()

    def _write(self, data: bytes) -> None:
        """The body, at once or (a drip fault) one byte at a time."""
        pause = getattr(self, "_drip", 0.0)
        if not pause:
            self.wfile.write(data)
            return
        for index in range(len(data)):
            if self.server.fake.pause(pause):
                raise Dropped
            self.wfile.write(data[index:index + 1])

    def _send_json(
        self, status: int, payload: dict[str, object], headers: dict[str, str] | None = None
    ) -> None:
        patch = getattr(self, "_patch", None)
        if patch and 200 <= status < 300:
            payload = {**payload, **patch}
        data = json.dumps(payload).encode()
        json_headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
        self._start(status, {**json_headers, **(headers or {})})
        self._write(data)
