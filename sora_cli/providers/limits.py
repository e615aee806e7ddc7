"""Bounds on what a provider may make sora do, shared by every provider adapter.

A provider is treated as hostile: each value it sends is parsed without trusting its
shape (an unparseable value counts as absent), each answer is read within a total
deadline and a size cap that count decompressed bytes as they come, and nothing it
says can move our clock by more than a plausible amount.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Mapping
from typing import Any, Final

from sora_cli.errors import ApiError

MAX_JSON_BYTES: Final = 10 * 1024 * 1024  # a JSON answer, decompressed
MIN_TRANSFER_RATE: Final = 32 * 1024  # bytes/s a body must keep up after request_timeout
MAX_DOWNLOAD_BYTES: Final = 16 * 1024**3  # a video without a declared size stops here
# An answer read through a provider's reducer (Vertex's, with a video inside), decompressed
MAX_REDUCED_BYTES: Final = 2 * 1024**3
MIN_BODY_BYTES: Final[Mapping[str, int]] = {"video": 1024, "thumbnail": 64, "spritesheet": 64}
# Unix times a provider may plausibly send (2001..2100); others are treated as absent.
PLAUSIBLE_TIME: Final = (1_000_000_000, 4_102_444_800)
MAX_SKEW: Final = 7 * 24 * 3600.0  # a server clock further off than this is not believed
JSON_ENCODINGS: Final = "gzip, deflate"  # what sora decodes itself, under the cap
_DIGITS: Final = re.compile(r"[0-9]{1,15}")


def request_deadline(timeout: float, transfer_bytes: int = 0) -> float:
    """The total time a request may take (connect, send, answer): `request_timeout`,
    plus time for the bytes it moves at MIN_TRANSFER_RATE."""
    return timeout + transfer_bytes / MIN_TRANSFER_RATE


def load_json(raw: bytes | str) -> Any:
    """The decoded JSON, or None when it is not JSON sora can hold (malformed, nested
    deeper than the parser's recursion limit, numbers too long to convert)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError, UnicodeDecodeError, OverflowError):
        return None


def ascii_int(text: str | None) -> int | None:
    """An integer written with ASCII digits only (``"²"`` is a digit to `str.isdigit`),
    at most 15 of them; None otherwise."""
    if text is None:
        return None
    text = text.strip()
    return int(text) if _DIGITS.fullmatch(text) else None


def number(value: Any) -> float | None:
    """A finite number from a JSON value (a number or a numeric ASCII string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.isascii() or len(value) > 32:
            return None
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def whole(value: Any, low: int, high: int) -> int | None:
    """A whole number within low..high (clamped), or None when there is none."""
    result = number(value)
    return None if result is None else int(min(max(result, low), high))


def plausible_time(value: Any) -> int | None:
    """A unix time a provider may plausibly mean, else None (absent)."""
    result = number(value)
    if result is None or not PLAUSIBLE_TIME[0] <= result <= PLAUSIBLE_TIME[1]:
        return None
    return int(result)


def bounded_skew(skew: float | None) -> float | None:
    """The server's clock minus ours, when believable; a far-off Date (year 9999) is
    not a clock to correct for, and would expire every job at once."""
    if skew is None or not math.isfinite(skew) or abs(skew) > MAX_SKEW:
        return None
    return skew


class CappedDecoder:
    """Decodes a body's Content-Encoding as the bytes arrive, never producing more than
    the cap: a gzip bomb stops at the cap, however small it is on the wire."""

    def __init__(self, encoding: str | None, cap: int) -> None:
        name = (encoding or "").strip().lower()
        self.left = cap + 1  # one byte more than the cap says "too large"
        self._raw_deflate = False
        if name in ("", "identity"):
            self._z: Any = None
        elif name in ("gzip", "x-gzip", "deflate"):
            self._z = zlib.decompressobj(47)  # zlib or gzip container, told by its header
            self._raw_deflate = name == "deflate"
        else:
            raise ApiError(f"the server sent an answer encoded as {name[:40]!r}, "
                           "which was not asked for", code="bad_encoding")

    def feed(self, data: bytes) -> bytes:
        out = data[: self.left] if self._z is None else self._inflate(data)
        self.left -= len(out)
        return out

    def _inflate(self, data: bytes) -> bytes:
        try:
            out = self._z.decompress(data, self.left)
        except zlib.error:
            if not self._raw_deflate:
                raise ApiError("the server sent a corrupt compressed answer",
                               code="bad_encoding") from None
            self._z, self._raw_deflate = zlib.decompressobj(-15), False  # bare deflate
            out = self._z.decompress(data, self.left)
        return bytes(out)

    @property
    def over(self) -> bool:
        return self.left <= 0
