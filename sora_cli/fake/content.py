"""Payloads of the fake Videos API server: the bytes it serves.

By default (`video_bytes` None) the real sample media of `sora_cli.fake.media`: a small
playable MP4, a WebP thumbnail, a JPEG spritesheet. With `video_bytes` set, synthetic
content of that size instead, for the tests of sizes, ranges and huge files.

Synthetic content is deterministic per (video id, variant, size) and generated block by
block, so that a 1 GiB "video" is streamed (and hashed for `expected_sha256`) without ever being
held in memory. Each block is one fixed pseudo-random block derived from the id, with
the block number written over its first 8 bytes; a small file header (and for JPEG a
trailer) is laid over the result so the bytes look like what they claim to be.

Request bodies (`sora_cli.fake.body`), their checks (`sora_cli.fake.validate`) and the
error envelope (`sora_cli.fake.errors`) live in their own modules; their names are
re-exported here for the code that imports them from this module.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from typing import Final

from sora_cli.fake.body import BodyError, FilePart, parse_body, parse_multipart
from sora_cli.fake.errors import ERROR_TYPES, FAULT_MESSAGES, ApiFailure, fault_failure
from sora_cli.fake.media import media_bytes, media_size
from sora_cli.fake.validate import (
    CREATE_KEYS,
    MAX_PROMPT,
    PRO_SIZES,
    REFERENCE_KEYS,
    SECONDS,
    SORA2_SIZES,
    CreateRequest,
    allowed_sizes,
    validate_create,
    validate_remix,
)

__all__ = [
    "BLOCK_SIZE",
    "CONTENT_TYPES",
    "CREATE_KEYS",
    "ERROR_TYPES",
    "FAULT_MESSAGES",
    "MAX_PROMPT",
    "PREVIEW_SIZES",
    "PRO_SIZES",
    "REFERENCE_KEYS",
    "SECONDS",
    "SORA2_SIZES",
    "ApiFailure",
    "BodyError",
    "CreateRequest",
    "FilePart",
    "allowed_sizes",
    "content_sha256",
    "content_size",
    "fault_failure",
    "iter_content",
    "parse_body",
    "parse_multipart",
    "validate_create",
    "validate_remix",
]

BLOCK_SIZE: Final = 64 * 1024

CONTENT_TYPES: Final[dict[str, str]] = {
    "video": "video/mp4",
    "thumbnail": "image/webp",
    "spritesheet": "image/jpeg",
}
PREVIEW_SIZES: Final[dict[str, int]] = {"thumbnail": 16 * 1024, "spritesheet": 48 * 1024}


def content_size(variant: str, video_bytes: int | None) -> int:
    """The size of a variant: the real media's with `video_bytes` None, else synthetic
    content of `video_bytes` (previews of PREVIEW_SIZES)."""
    if video_bytes is None:
        return media_size(variant)
    return video_bytes if variant == "video" else PREVIEW_SIZES[variant]


def _overlays(variant: str, size: int) -> list[tuple[int, bytes]]:
    """(offset, bytes) pieces laid over the pseudo-random stream."""
    if variant == "video":
        ftyp = struct.pack(">I", 32) + b"ftypisom" + struct.pack(">I", 0x200)
        ftyp += b"isomiso2avc1mp41"
        mdat_size = size - len(ftyp)
        mdat = struct.pack(">I", mdat_size if 8 <= mdat_size < 2**32 else 0) + b"mdat"
        return [(0, ftyp + mdat)]
    if variant == "thumbnail":
        riff = b"RIFF" + struct.pack("<I", max(size - 8, 0)) + b"WEBP"
        return [(0, riff + b"VP8 " + struct.pack("<I", max(size - 20, 0)))]
    jfif = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return [(0, jfif), (max(size - 2, len(jfif)), b"\xff\xd9")]


def _base_block(video_id: str, variant: str) -> bytes:
    return hashlib.shake_256(f"sora-fake:{video_id}:{variant}".encode()).digest(BLOCK_SIZE)


def iter_content(
    video_id: str, variant: str, size: int, start: int = 0, end: int | None = None,
    *, real: bool = False,
) -> Iterator[bytes]:
    """Yield bytes [start, end) of the content, at most one block per chunk; `real`: of
    the real media (whose size is fixed: `size` is then not used)."""
    if real:
        data = media_bytes(video_id, variant)
        stop = len(data) if end is None else min(end, len(data))
        for pos in range(start, stop, BLOCK_SIZE):
            yield data[pos : min(pos + BLOCK_SIZE, stop)]
        return
    stop = size if end is None else min(end, size)
    base = _base_block(video_id, variant)
    overlays = _overlays(variant, size)
    pos = start
    while pos < stop:
        index, offset = divmod(pos, BLOCK_SIZE)
        block_start = index * BLOCK_SIZE
        block = bytearray(index.to_bytes(8, "big") + base[8:])
        for at, data in overlays:
            lo, hi = max(at, block_start), min(at + len(data), block_start + BLOCK_SIZE)
            if lo < hi:
                block[lo - block_start : hi - block_start] = data[lo - at : hi - at]
        take = min(BLOCK_SIZE - offset, stop - pos)
        yield bytes(block[offset : offset + take])
        pos += take


def content_sha256(video_id: str, variant: str, size: int, *, real: bool = False) -> str:
    digest = hashlib.sha256()
    for chunk in iter_content(video_id, variant, size, real=real):
        digest.update(chunk)
    return digest.hexdigest()
