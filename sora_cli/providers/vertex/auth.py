"""Google credentials for Vertex: Application Default Credentials through google-auth,
the optional `vertex` extra (`pip install 'sora-cli[vertex]'`), imported by nothing but
this provider's code, and only when a Vertex job is submitted or worked.

- `check_credentials(settings)`: AuthError (exit 4) naming what is missing when
  google-auth is not installed or ADC finds no credentials (a service-account file in
  GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default login, a metadata
  server), or no project is known; InvalidInput (exit 2) for a malformed project or
  location. A submit calls it before anything is recorded, a runner before it takes
  Vertex jobs.
- `GoogleToken`: the OAuth access token for the requests, refreshed when google-auth
  says it is no longer valid (it refreshes ahead of the expiry), one refresh at a time,
  in a thread (google-auth is synchronous). Each token is registered as a secret: a
  server echoing it gets it masked. The service account's private key is read by
  google-auth alone; what google-auth says goes out scrubbed, any JWT in it masked.
- `HttpxRequest`: google-auth's transport interface on httpx, so the extra needs no
  `requests`, with the limits of every provider's answers (a total deadline, a size cap
  counted as the body is decoded). The token endpoint is the one the credentials name
  (a service-account file's `token_uri`): tests point it at the fake server. A token
  that cannot be had (an outage, an unreadable answer) is trouble like any other: a
  paid job's polls go on.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from sora_cli.config import Settings
from sora_cli.domain.text import MASK, clean, register_secrets, scrub
from sora_cli.errors import ApiError, AuthError, InvalidInput, TransportError
from sora_cli.providers.limits import JSON_ENCODINGS, CappedDecoder, request_deadline

SCOPES: Final = ("https://www.googleapis.com/auth/cloud-platform",)
MAX_TOKEN_ANSWER: Final = 1024 * 1024  # a token answer is a few hundred bytes
INSTALL_HINT: Final = "pip install 'sora-cli[vertex]'"
# A project id (6-30 letters, digits, hyphens) or number; a location (us-central1, global).
_PROJECT: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,61}[a-z0-9]")
_LOCATION: Final = re.compile(r"[a-z][a-z0-9-]{0,39}")
_JWT: Final = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_HINT: Final = ("set GOOGLE_APPLICATION_CREDENTIALS to a service-account file, or run "
                "`gcloud auth application-default login`")


@dataclass(frozen=True)
class Found:
    credentials: Any  # google.auth.credentials.Credentials
    project: str
    location: str


def _google_auth() -> Any:
    try:
        import google.auth
        import google.auth.exceptions
    except ImportError:
        raise AuthError(f"the vertex provider needs google-auth: {INSTALL_HINT}") from None
    return google.auth


def find(settings: Settings) -> Found:
    """The credentials, project and location Vertex jobs use (see the module docstring)."""
    ga = _google_auth()
    p = settings.provider("vertex")
    try:  # GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default login, a metadata server
        credentials, adc_project = ga.default(scopes=list(SCOPES))
    except ga.exceptions.DefaultCredentialsError as exc:
        raise AuthError(f"no Google credentials for vertex ({_first_line(exc)}): "
                        f"{_HINT}") from None
    project = (p.extra("project") if p else None) or adc_project
    location = (p.extra("location") if p else None) or "us-central1"
    if not project:
        raise AuthError("no Google Cloud project for vertex: set SORA_VERTEX_PROJECT (or "
                        "GOOGLE_CLOUD_PROJECT, or project in [providers.vertex])")
    if _PROJECT.fullmatch(project) is None:
        raise InvalidInput(f"not a Google Cloud project id: {clean(project)[:80]!r}")
    if _LOCATION.fullmatch(location) is None:
        raise InvalidInput(f"not a Vertex AI location: {clean(location)[:80]!r}")
    return Found(credentials, project, location)


def check_credentials(settings: Settings) -> None:
    find(settings)


def _first_line(exc: BaseException) -> str:
    """What google-auth said, scrubbed, without any JWT it may quote (the token
    endpoint's answer can echo the signed assertion)."""
    text = _JWT.sub(MASK, scrub(exc.args[0] if exc.args else exc, None)).strip()
    return (text.splitlines() or ["none found"])[0][:300]


class _Response:
    """google.auth.transport.Response (duck-typed: google-auth reads only these three)."""

    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self.status = status
        self.headers = headers
        self.data = data


class HttpxRequest:
    """google.auth.transport.Request on a synchronous httpx client, held to the limits
    every provider's answers are: a total deadline (a token endpoint dripping bytes
    cannot hold a refresh) and a size cap counted as the body is decoded."""

    def __init__(self, timeout: float, verify: Any = True) -> None:
        self._timeout = timeout
        self._http = httpx.Client(timeout=timeout, verify=verify, follow_redirects=False,
                                  headers={"Accept-Encoding": JSON_ENCODINGS})

    def __call__(self, url: str, method: str = "GET", body: bytes | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float | None = None,
                 **kwargs: Any) -> _Response:
        limit = timeout or self._timeout
        try:
            return self._exchange(url, method, body, headers, limit)
        except (httpx.HTTPError, ApiError, _Unusable) as exc:
            import google.auth.exceptions

            error: Exception = google.auth.exceptions.TransportError(  # type: ignore[no-untyped-call]
                f"{type(exc).__name__} for the token endpoint"
                + (f": {exc}" if isinstance(exc, _Unusable) else ""))
            raise error from exc

    def _exchange(self, url: str, method: str, body: bytes | None,
                  headers: Mapping[str, str] | None, limit: float) -> _Response:
        deadline = time.monotonic() + request_deadline(limit)
        with self._http.stream(method, url, content=body, headers=dict(headers or {}),
                               timeout=limit) as response:
            decoder = CappedDecoder(response.headers.get("content-encoding"), MAX_TOKEN_ANSWER)
            data = bytearray()
            for chunk in response.iter_raw():
                data += decoder.feed(chunk)
                if decoder.over:
                    raise _Unusable(f"an answer over {MAX_TOKEN_ANSWER >> 10} KiB")
                if time.monotonic() > deadline:
                    raise _Unusable(f"no whole answer within {limit:g} s")
            kept = {k: v for k, v in response.headers.items() if k.lower() != "content-encoding"}
            return _Response(response.status_code, kept, bytes(data))

    def close(self) -> None:
        self._http.close()


class _Unusable(Exception):
    """The token endpoint's answer broke a limit."""


class GoogleToken:
    """The access token of the credentials ADC found, refreshed when needed."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._found: Found | None = None
        self._lock = asyncio.Lock()
        self._request: HttpxRequest | None = None

    async def found(self) -> Found:
        if self._found is None:
            self._found = await asyncio.to_thread(find, self._settings)
        return self._found

    async def headers(self) -> dict[str, str]:
        found = await self.found()
        async with self._lock:
            if not found.credentials.valid:
                await asyncio.to_thread(self._refresh, found.credentials)
                # a bearer token: masked wherever sora stores or prints what a server said
                register_secrets([found.credentials.token])
        return {"Authorization": f"Bearer {found.credentials.token}"}

    def _refresh(self, credentials: Any) -> None:
        ga = _google_auth()
        if self._request is None:
            verify: Any = self._settings.ca_bundle or True
            self._request = HttpxRequest(self._settings.request_timeout, verify)
        try:
            credentials.refresh(self._request)
        except ga.exceptions.RefreshError as exc:
            raise AuthError(f"Google refused the vertex credentials: {_first_line(exc)}",
                            http_status=401) from None
        except ga.exceptions.TransportError as exc:
            raise TransportError(f"cannot get a Google access token: {_first_line(exc)}",
                                 sent=False) from None
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            # google-auth reading an answer it cannot parse (malformed or nested too deep)
            raise TransportError("Google's token endpoint sent an answer that cannot be read "
                                 f"({type(exc).__name__})", sent=False) from None

    def close(self) -> None:
        if self._request is not None:
            self._request.close()
