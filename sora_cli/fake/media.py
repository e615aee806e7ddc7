"""The real sample media the fake serves by default: a 2-second 320x180 H.264 MP4 (with
`faststart`, so a player can start before the end arrives), a WebP thumbnail and a JPEG
spritesheet, committed under `assets/`.

Every video's bytes differ, as real videos' do: a top-level `free` box naming the video
is appended to the MP4 (players skip `free` boxes), so a client that mixes two videos up,
or checks a sha256 against the wrong one, is caught. The previews are the same for
every video.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from pathlib import Path
from typing import Final

ASSETS: Final = Path(__file__).resolve().with_name("assets")
FILES: Final[dict[str, str]] = {
    "video": "video.mp4",
    "thumbnail": "thumbnail.webp",
    "spritesheet": "spritesheet.jpg",
}
_TAG_PREFIX: Final = b"sora-fake:"
TAG_BYTES: Final = 8 + len(_TAG_PREFIX) + 64  # box header, prefix, sha256 hex of the id


@functools.cache
def asset(variant: str) -> bytes:
    """The committed file of a variant, read once."""
    return (ASSETS / FILES[variant]).read_bytes()


def _tag(video_id: str) -> bytes:
    name = _TAG_PREFIX + hashlib.sha256(video_id.encode()).hexdigest().encode()
    return struct.pack(">I", 8 + len(name)) + b"free" + name


def media_bytes(video_id: str, variant: str) -> bytes:
    """The whole payload of one video's variant."""
    return asset(variant) + _tag(video_id) if variant == "video" else asset(variant)


def media_size(variant: str) -> int:
    return len(asset(variant)) + (TAG_BYTES if variant == "video" else 0)
