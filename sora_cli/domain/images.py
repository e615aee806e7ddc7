"""Images by their bytes, without an imaging library: which kind (JPEG, PNG, WebP) and
the pixel size, read from the headers (PNG IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X).
Pure functions, no I/O."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import PurePath
from typing import Final

from sora_cli.errors import InvalidInput

_URL: Final = re.compile(r"https?://\S+", re.IGNORECASE)
_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_SIZE: Final = re.compile(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})")
# JPEG start-of-frame markers (baseline, progressive, lossless...): not DHT, JPG or DAC.
_SOF: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7,
                         0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
FORMATS: Final = {  # kind: (file extension, content type, Pillow format)
    "jpeg": ("jpg", "image/jpeg", "JPEG"),
    "png": ("png", "image/png", "PNG"),
    "webp": ("webp", "image/webp", "WEBP"),
}


@dataclass(frozen=True)
class ImageInfo:
    kind: str  # "jpeg", "png" or "webp"
    width: int
    height: int

    @property
    def ext(self) -> str:
        return FORMATS[self.kind][0]

    @property
    def mime(self) -> str:
        return FORMATS[self.kind][1]

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


def is_url(ref: str) -> bool:
    return _URL.fullmatch(ref) is not None


def sniff(data: bytes) -> str | None:
    """"jpeg", "png" or "webp" from the first bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def image_info(data: bytes) -> ImageInfo | None:
    """The kind and pixel size of a JPEG, PNG or WebP image, or None if it is not one."""
    kind = sniff(data)
    if kind is None:
        return None
    size = {"png": _png_size, "jpeg": _jpeg_size, "webp": _webp_size}[kind](data)
    if size is None or min(size) <= 0:
        return None
    return ImageInfo(kind, *size)


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2  # after SOI
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None  # not at a marker: damaged
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame
            return None
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if marker in _SOF:
            if length < 7 or pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def parse_size(size: str) -> tuple[int, int]:
    match = _SIZE.fullmatch(size)
    if match is None:
        raise InvalidInput(f"--size must look like WIDTHxHEIGHT (got {size!r})")
    return int(match[1]), int(match[2])


def kept_sha256(path: PurePath) -> str | None:
    """The sha256 a kept image is named by (SORA_HOME/inputs/<sha256>.<ext>), else None."""
    stem = path.name.split(".", 1)[0]
    return stem if _SHA256.fullmatch(stem) else None
