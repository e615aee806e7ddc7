"""What the fake server makes of an uploaded image: its kind and pixel size.

Deliberately not the product's own header parser (the fake must be able to catch a
bug in it): Pillow reads the image when it is installed (the `image` extra, and the
dev environment); otherwise, or when Pillow refuses a file whose header is fine (a
test image without pixel data), a small reader of its own looks at the first bytes.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Picture:
    kind: str  # "jpeg", "png" or "webp"
    width: int
    height: int

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


def picture(data: bytes) -> Picture | None:
    """The image in `data`, or None when it is no JPEG, PNG or WebP."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        return _sniffed(data)
    try:
        with Image.open(io.BytesIO(data)) as img:
            kind = (img.format or "").lower()
            return Picture(kind, *img.size) if kind in ("jpeg", "png", "webp") else None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error):
        return _sniffed(data)  # a header without a valid body (a bad CRC...): sniff it


def _sniffed(data: bytes) -> Picture | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return Picture("png", *struct.unpack(">II", data[16:24]))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:16] == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return Picture("webp", w, h)
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg(data)
    return None


def _jpeg(data: bytes) -> Picture | None:
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker, length = data[at + 1], int.from_bytes(data[at + 2:at + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", data[at + 5:at + 9])
            return Picture("jpeg", w, h)
        at += 2 + length
    return None
