"""Videos that come inside Vertex's operation answer (`bytesBase64Encoded`, when no
`storageUri` was set), read as the answer streams, never whole.

An 8-second 1080p video is tens of MiB, a third more as base64, inside one JSON answer
that a poll would otherwise read into memory. So both readings of that answer stream:

- `reduce_operation` (the poll): the JSON with each `bytesBase64Encoded` string
  replaced by ``{"soraInline": <its ordinal in the answer>, "bytes": <decoded size, or
  -1 when it is not base64>}``; the rest is read as any answer (up to the shared 10 MiB
  cap), so the poll holds a network chunk of video at a time.
- `decode_inline` (the download): the decoded bytes of one of those strings, chosen by
  its ordinal, yielded a network chunk at a time; the rest of the answer is skipped.

What sora holds in memory for an inline video is one network chunk (httpx's, 64 to
256 KiB) plus at most three base64 characters: never the video. The scanner knows only
JSON strings: outside them it copies bytes (and watches for the key and its colon);
inside the wanted values it counts or decodes. Base64 written with JSON's `\\/` escape is
accepted; any other escape, or a character outside the alphabet, marks it unusable.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Callable
from typing import Final

from sora_cli.errors import ApiError

KEY: Final = b"bytesBase64Encoded"
MAX_INLINE_BYTES: Final = 1024 * 1024 * 1024  # a bigger inline video is refused: 1 GiB
_WS: Final = b" \t\r\n"
_STOP: Final = re.compile(rb'["\\]')
_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


class _Scan:
    """The scanner's state across chunks (see the module docstring)."""

    def __init__(self, on_value: Callable[[int, bytes], None],
                 on_text: Callable[[bytes], None]) -> None:
        self.on_value = on_value  # (ordinal, base64 characters) inside a wanted value
        self.on_text = on_text  # everything else of the answer, as it came
        self.in_string = False
        self.in_value = False
        self.escaped = False  # the previous byte was a backslash (across chunks)
        self.head = bytearray()  # the first bytes of the current string (key check)
        self.expect = 0  # 1: the key string just ended; 2: and its colon came
        self.ordinal = -1  # of the value being read
        self.bad = False  # the current value is not usable base64
        self.count = 0  # base64 characters of the current value
        self.padding = 0
        self.sizes: list[int] = []  # the decoded size of each value, -1 when unusable

    def feed(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n:
            if self.in_value:
                i = self._value(data, i)
            elif self.in_string:
                i = self._string(data, i)
            else:
                j = data.find(b'"', i)
                end = n if j < 0 else j
                self._between(data[i:end])
                self.on_text(data[i:end])
                if j < 0:
                    return
                self._open()
                i = j + 1

    def _between(self, text: bytes) -> None:
        if self.expect == 0:
            return
        stripped = text.strip(_WS)
        if not stripped:
            return
        self.expect = 2 if self.expect == 1 and stripped == b":" else 0

    def _open(self) -> None:
        if self.expect == 2:
            self.in_value, self.ordinal = True, self.ordinal + 1
            self.bad, self.count, self.padding = False, 0, 0
        else:
            self.in_string = True
            self.head.clear()
            self.on_text(b'"')
        self.expect = 0

    def _string(self, data: bytes, i: int) -> int:
        if self.escaped:  # the byte after a backslash, whatever it is
            self.escaped = False
            self.head += b"\\"
            self.on_text(data[i:i + 1])
            return i + 1
        m = _STOP.search(data, i)
        end = len(data) if m is None else m.start()
        if len(self.head) <= len(KEY):
            self.head += data[i:end][:len(KEY) + 1]
        self.on_text(data[i:end])
        if m is None:
            return end
        self.on_text(data[end:end + 1])
        if data[end:end + 1] == b"\\":
            self.escaped = True
        else:
            self.in_string = False
            self.expect = 1 if bytes(self.head) == KEY else 0
        return end + 1

    def _value(self, data: bytes, i: int) -> int:
        if self.escaped:
            self.escaped = False
            if data[i:i + 1] == b"/":
                self._chars(b"/")
            else:
                self.bad = True
            return i + 1
        m = _STOP.search(data, i)
        end = len(data) if m is None else m.start()
        self._chars(data[i:end])
        if m is None:
            return end
        if data[end:end + 1] == b"\\":
            self.escaped = True
        else:
            self.in_value = False
            self._close()
        return end + 1

    def _chars(self, chars: bytes) -> None:
        if not chars:
            return
        if chars.translate(None, _ALPHABET) or (self.padding and chars.strip(b"=")):
            self.bad = True
        pads = len(chars) - len(chars.rstrip(b"="))
        if b"=" in chars[:len(chars) - pads]:
            self.bad = True
        self.padding += pads
        self.count += len(chars)
        self.on_value(self.ordinal, chars)

    def _close(self) -> None:
        size = self.count // 4 * 3 - self.padding
        usable = not self.bad and self.count % 4 == 0 and self.padding <= 2
        self.sizes.append(size if usable and 0 < size <= MAX_INLINE_BYTES else -1)
        self.on_text(b'{"soraInline": %d, "bytes": %d}' % (self.ordinal, self.sizes[-1]))


async def reduce_operation(chunks: AsyncIterator[bytes], limit: int) -> tuple[bytes, bool]:
    """The operation answer with its inline videos replaced (see the module docstring):
    at most `limit` bytes, and whether that is the whole answer."""
    out = bytearray()
    scan = _Scan(lambda ordinal, chars: None, out.extend)
    async for chunk in chunks:
        scan.feed(chunk)
        if len(out) > limit:
            return bytes(out[:limit]), False
    return bytes(out), not (scan.in_string or scan.in_value)


async def decode_inline(chunks: AsyncIterator[bytes], ordinal: int) -> AsyncIterator[bytes]:
    """The decoded bytes of the `ordinal`-th inline video of an operation answer; stops
    at the end of its string (a shorter answer ends the iteration early: the caller
    compares what it got with the size the poll saw)."""
    pending = bytearray()  # base64 characters not yet decoded (less than 4 after a chunk)
    ready: list[bytes] = []

    def take(at: int, chars: bytes) -> None:
        if at != ordinal:
            return
        pending.extend(chars)
        whole = len(pending) // 4 * 4
        if whole:
            try:
                ready.append(base64.b64decode(bytes(pending[:whole]), validate=True))
            except ValueError:  # binascii.Error: the answer changed since the poll
                raise ApiError("the inline video in Vertex's answer is not valid base64",
                               http_status=200) from None
            del pending[:whole]

    scan = _Scan(take, lambda text: None)
    async for chunk in chunks:
        scan.feed(chunk)
        for piece in ready:
            yield piece
        ready.clear()
        if len(scan.sizes) > ordinal:  # its string is closed: the rest is not needed
            return
