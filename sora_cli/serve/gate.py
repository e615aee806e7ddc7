"""The checks every request passes before the application sees it, as plain ASGI.

- **Bind**: a host that is not loopback needs a token (`SORA_SERVE_TOKEN`, or
  `serve_token` in a 0600 config file); without one `sora serve` refuses to start.
- **Host header**: without a token only loopback names are answered, so a web page
  cannot reach the open API through DNS rebinding (with a token, any name: a proxy
  in front may send its own).
- **Token**: with a token, every `/api/` request needs `Authorization: Bearer <token>`
  (compared in constant time). Browsers send no headers with `<video src>` or
  `EventSource`, so the media and event routes also take `?access=KEY`: a read-only key
  derived from the token and a per-process secret (`GET /api/info` gives it to a
  caller that has the token; it changes on every start).
- **POST**: only `Content-Type: application/json` (415 otherwise), and a browser's
  `Origin`, when sent, must be this server: no form posts from other sites.
- **Headers**: every answer is `nosniff`, never framed, and sends no referrer.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sora_cli.errors import InvalidInput

# Routes a browser fetches without headers (<video>, <img>, EventSource): ?access= too.
_KEYED: Final = re.compile(r"/api/(events|(task|jobs)/[^/]+/(video|thumbnail))")
SECURITY_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: not provably loopback
        return False


@dataclass(frozen=True)
class Access:
    """Who may ask: anyone on loopback (no token), or holders of the token."""

    token: str | None
    loopback: bool
    media_key: str | None  # the read-only key for ?access=, derived from the token

    @classmethod
    def for_bind(cls, host: str, token: str | None) -> Access:
        """The access rules of a server bound to `host`; InvalidInput (exit 2) for a
        host other than loopback without a token."""
        loopback = is_loopback(host)
        if not loopback and not token:
            raise InvalidInput(
                f"--host {host} is not a loopback address: set SORA_SERVE_TOKEN (or "
                "serve_token in a config file only you can read) to serve other machines")
        key = None
        if token:
            salt = secrets.token_bytes(32)  # per process: a leaked key dies with a restart
            key = hmac.new(salt, token.encode(), hashlib.sha256).hexdigest()
        return cls(token=token or None, loopback=loopback, media_key=key)

    def bearer_ok(self, header: str | None) -> bool:
        if self.token is None:
            return True
        scheme, _, value = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self.token.encode())

    def key_ok(self, key: str | None) -> bool:
        return self.media_key is not None and key is not None and hmac.compare_digest(
            key.encode(), self.media_key.encode())


class Gate:
    """ASGI middleware: the checks above, then the application with the headers added."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        if refusal is not None:
            status, detail, extra = refusal
            await _send_json(send_with_headers, status, detail, extra)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if self.access.token is None and not _host_ok(headers.get("host")):
            return 421, "this server answers only to a loopback host name", []
        path: str = scope.get("path", "")
        if path.startswith("/api/") and not self.access.bearer_ok(headers.get("authorization")):
            key = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("access")
            if not (_KEYED.fullmatch(path) and self.access.key_ok(key[0] if key else None)):
                return 401, "a token is needed: Authorization: Bearer <token>", [
                    (b"www-authenticate", b'Bearer realm="sora"')]
        if scope.get("method") == "POST":
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                return 415, "POST bodies must be application/json", []
            origin = headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != headers.get("host"):
                return 403, f"cross-origin request from {origin} refused", []
        return None


def _host_ok(host: str | None) -> bool:
    if not host:
        return False
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return is_loopback(name)  # an IP literal or "localhost": never a name a site controls


async def _send_json(send: Send, status: int, detail: str,
                     extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
