"""What the JSON-input providers (fal, Replicate, ...) share: a job's input object, the
match of a listed job against it, and the checks on what comes back (ids, URLs, times).

A job's input is its prompt, its params (the model's fields, mapped at submit), and its
image in the model's image field: a URL as given, or a local file as a data URI within
the provider's documented size limit.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import httpx

from sora_cli.domain.catalogue import find_model
from sora_cli.domain.providers import BUILTIN
from sora_cli.domain.text import clean, scrub_or_none
from sora_cli.errors import CannotSend
from sora_cli.providers.base import CreateRequest
from sora_cli.providers.limits import plausible_time

MAX_URL: Final = 8192
_REMOTE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def image_field(provider: str, model: str) -> str | None:
    info = find_model(provider, model)
    return info.image_field if info is not None else None


def model_input(request: CreateRequest) -> dict[str, Any]:
    """The input object a create sends: prompt, params, and the image in its field."""
    job = request.job
    body: dict[str, Any] = {"prompt": job.prompt, **(job.params or {})}
    image = request.image
    if image is None:
        return body
    field = image_field(job.provider, job.model)
    if field is None:
        raise CannotSend("image_unsupported", f"{job.model_ref} has no known image field")
    if image.url is not None:
        body[field] = image.url
        return body
    limit = BUILTIN[job.provider].inline_image_bytes if job.provider in BUILTIN else 0
    if len(image.data) > limit:
        raise CannotSend("image_too_large", (
            f"the image is {len(image.data)} bytes; {job.provider} takes a local image inline "
            f"up to {limit} bytes: give a URL instead"))
    body[field] = f"data:{image.mime};base64,{base64.b64encode(image.data).decode()}"
    return body


def matches_input(sent: Mapping[str, Any], seen: Any, *, skip: str | None) -> bool:
    """True when a listed job's input has every field this job sent (an image field
    aside: providers may keep an uploaded image as a URL of their own)."""
    if not isinstance(seen, Mapping):
        return False
    return all(seen.get(k) == v for k, v in sent.items() if k != skip)


def remote_id(value: Any) -> str | None:
    """An id as the provider gave it, when it is safe to keep and show (no path tricks,
    no control characters); None otherwise."""
    if isinstance(value, str) and _REMOTE_ID.fullmatch(value) and ".." not in value:
        return value
    return None


def result_url(value: Any) -> str | None:
    """A result URL when it is a plain http(s) URL without credentials in it."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        return None
    if clean(value) != value or any(c.isspace() for c in value):
        return None
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError):
        return None
    if url.scheme not in ("http", "https") or not url.host or url.userinfo:
        return None
    return value


def timestamp(value: Any) -> float | None:
    """An ISO 8601 time (`2025-01-01T00:00:05Z`) as epoch seconds; None if unusable."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    try:
        epoch = when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
    return float(epoch) if plausible_time(epoch) is not None else None  # 2001..2100


def text(value: Any, limit: int = 2000) -> str | None:
    """A string from the provider, scrubbed and bounded (other JSON as compact text)."""
    if value is None:
        return None
    if not isinstance(value, str):
        import json

        try:
            value = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            return None
    return scrub_or_none(value, limit)  # the one redaction: secrets, controls, length
