"""The data the Videos API client takes and returns (no I/O here).

Parsing is tolerant: unknown keys are ignored, unknown status strings are kept as
they are, and loosely typed values (``"42"`` for an int, an int for ``seconds``)
are coerced rather than refused, since gateways differ in the details.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import quote

from sora_cli.domain.text import mask_key, scrub_or_none
from sora_cli.errors import ApiError
from sora_cli.providers.limits import number, plausible_time, whole

MAX_ID_CHARS: Final = 1024  # LiteLLM's encrypted ids run to a few hundred characters
# Control and format characters (escapes, bidi overrides, zero-width), line separators.
_UNSAFE: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def valid_video_id(value: object) -> bool:
    """True for an id sora can keep, show and address: the contract's ids are opaque
    (``video_...``, ``gemini::operations/...``), so only their length and characters are
    checked; `id_segment` makes any of them one path segment."""
    return (isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS
            and value not in (".", "..") and value.strip() == value
            and not any(unicodedata.category(c) in _UNSAFE for c in value))


def id_segment(video_id: str) -> str:
    """A video id as ONE path segment: every byte but unreserved ones percent-encoded
    (``/``, ``:``, ``?``, ``#``, ``%`` included), so it can never leave its segment."""
    return quote(video_id, safe="")


@dataclass(frozen=True, repr=False)
class ApiSettings:
    base_url: str
    api_key: str
    auth_style: Literal["bearer", "azure"] = "bearer"
    organization: str | None = None
    project: str | None = None
    timeout: float = 60.0
    max_retries: int = 5
    ca_bundle: str | None = None

    def __repr__(self) -> str:
        return (
            f"ApiSettings(base_url={self.base_url!r}, api_key={mask_key(self.api_key)!r}, "
            f"auth_style={self.auth_style!r}, organization={self.organization!r}, "
            f"project={self.project!r}, timeout={self.timeout!r}, "
            f"max_retries={self.max_retries!r}, ca_bundle={self.ca_bundle!r})"
        )


def _str(value: Any) -> str | None:
    """A string field as sent (used to match a video with a job: never rewritten), or
    a number's text; None for anything else, and for numbers beyond a float."""
    if isinstance(value, str):
        return value
    found = number(value) if isinstance(value, int | float) else None
    if found is None:
        return None
    return str(int(found)) if found.is_integer() else str(found)


def _cursor(value: Any) -> str | None:
    """A list cursor: it goes back into a URL, so only an id of the usual shape."""
    return value if valid_video_id(value) else None


def _shown(value: Any, limit: int) -> str | None:
    """A field that is stored and printed: scrubbed (domain.text.scrub) and bounded."""
    text = _str(value)
    return None if text is None else scrub_or_none(text, limit)


@dataclass(frozen=True)
class Video:
    id: str
    status: str
    progress: int
    model: str | None
    size: str | None
    seconds: str | None
    prompt: str | None
    created_at: int | None
    completed_at: int | None
    expires_at: int | None
    remixed_from_video_id: str | None
    error_code: str | None
    error_message: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Video:
        """A Video from its JSON object; raises ApiError only when it has no usable id."""
        video_id = data.get("id") if isinstance(data, Mapping) else None
        if not isinstance(video_id, str) or not video_id:
            raise ApiError("unexpected answer: a video object without an id")
        if not valid_video_id(video_id):  # it goes into URLs: never trust its shape
            raise ApiError(f"unexpected answer: an unusable video id {video_id[:80]!r}")
        # Every other field: an unparseable value counts as absent, never as a failure.
        error = data.get("error")
        code = message = None
        if isinstance(error, Mapping):
            code, message = _shown(error.get("code"), 100), _shown(error.get("message"), 2000)
        elif isinstance(error, str):
            message = _shown(error, 2000)
        remixed = data.get("remixed_from_video_id")
        return cls(
            id=video_id,
            status=_shown(data.get("status"), 64) or "unknown",
            progress=whole(data.get("progress"), 0, 100) or 0,
            model=_str(data.get("model")),
            size=_str(data.get("size")),
            seconds=_str(data.get("seconds")),
            prompt=_str(data.get("prompt")),
            created_at=plausible_time(data.get("created_at")),
            completed_at=plausible_time(data.get("completed_at")),
            expires_at=plausible_time(data.get("expires_at")),
            remixed_from_video_id=remixed if valid_video_id(remixed) else None,
            error_code=code,
            error_message=message,
        )


@dataclass(frozen=True)
class VideoPage:
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VideoPage:
        """A page of the list answer; entries that are not video objects are skipped."""
        items = data.get("data")
        videos = [
            Video.from_json(item)
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, Mapping) and valid_video_id(item.get("id"))
        ]
        return cls(
            data=videos,
            first_id=_cursor(data.get("first_id")),
            last_id=_cursor(data.get("last_id")),
            has_more=data.get("has_more") is True,
        )
