"""A fake of the Echo render API for the plug-in's tests (stdlib only): renders are
`working` for `job_seconds`, then `done` (or `failed` for prompts with "forbidden"),
their file is bytes derived from the id (Range honoured); `drop_next_create` makes the
next create land and then drops the connection (an unanswered create)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def content(render_id: str, size: int = 40_000) -> bytes:
    seed = hashlib.sha256(render_id.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


class EchoFake(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, key: str, job_seconds: float = 0.5) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.key, self.job_seconds = key, job_seconds
        self.renders: dict[str, dict[str, Any]] = {}
        self.creates: list[dict[str, Any]] = []
        self.drop_next_create = False
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def __enter__(self) -> EchoFake:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: EchoFake

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.server.key}":
            return True
        self._json(401, {"error": {"message": "bad key"}})
        return False

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if self.path != "/renders" or not self._authorized():
            return
        render = {"id": uuid.uuid4().hex, "text": body.get("text"), "body": body,
                  "started": time.monotonic()}
        with self.server.lock:
            self.server.renders[render["id"]] = render
            self.server.creates.append(body)
            drop, self.server.drop_next_create = self.server.drop_next_create, False
        if drop:
            self.close_connection = True
            return
        self._json(201, {"id": render["id"], "state": "working"})

    def do_GET(self) -> None:
        if not self._authorized():
            return
        match = re.fullmatch(r"/(renders|files)/([0-9a-f]{32})(\.mp4)?", self.path)
        render = self.server.renders.get(match[2]) if match else None
        if match is None or render is None:
            self._json(404, {"error": {"message": "no such render"}})
            return
        done = time.monotonic() - render["started"] >= self.server.job_seconds
        failed = "forbidden" in str(render["text"])
        if match[1] == "renders":
            state = ("failed" if failed else "done") if done else "working"
            self._json(200, {"id": render["id"], "state": state,
                             "file": f"/files/{render['id']}.mp4" if state == "done" else None,
                             "error": "refused by the echo filter" if state == "failed" else None})
            return
        data = content(render["id"])
        wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        start = int(wanted[1]) if wanted else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        self.wfile.write(data[start:])
