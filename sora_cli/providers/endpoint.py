"""What a provider's API is, for the shared HTTP machinery (http.py): its settings
(`Endpoint`), the bodies a request sends, and the small facts of one answer (the
server's clock, what the attempt log names a request by). No I/O here."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from sora_cli.domain.text import mask_key

ImageFile = tuple[str, bytes, str]  # file name, bytes, content type


class Endpoint(Protocol):
    """Where a provider's API is and how hard to try: what `HttpApi` reads."""

    @property
    def base_url(self) -> str: ...

    @property
    def api_key(self) -> str: ...

    @property
    def timeout(self) -> float: ...

    @property
    def max_retries(self) -> int: ...

    @property
    def ca_bundle(self) -> str | None: ...


@dataclass(frozen=True, repr=False)
class EndpointSettings:
    """An `Endpoint` for the providers whose client needs nothing more."""

    base_url: str
    api_key: str
    timeout: float = 60.0
    max_retries: int = 5
    ca_bundle: str | None = None

    def __repr__(self) -> str:
        return (f"EndpointSettings(base_url={self.base_url!r}, "
                f"api_key={mask_key(self.api_key)!r}, timeout={self.timeout!r}, "
                f"max_retries={self.max_retries!r}, ca_bundle={self.ca_bundle!r})")


@dataclass(frozen=True)
class Multipart:
    """A multipart/form-data body: plain fields and file parts."""

    fields: dict[str, str]
    files: dict[str, ImageFile]


Body = dict[str, Any] | Multipart


def user_agent() -> str:
    try:
        version = importlib.metadata.version("sora-cli")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"sora-cli/{version}"


def log_path(url: str, base: str) -> str:
    """What the attempt log says a request went to: the path under the base (as before),
    or an absolute URL's path, never its query string (signed URLs carry secrets)."""
    if url.startswith(base + "/") or url == base:
        return url[len(base):].split("?", 1)[0] or "/"
    return httpx.URL(url).path
