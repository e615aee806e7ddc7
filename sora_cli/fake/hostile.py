"""Hostile answers of the fake server: what a malicious or broken provider may send.

- ``body``: answer ``status`` with ``text`` as the raw body (``content_type``, JSON by
  default): deeply nested JSON, an HTML page on a 200, an empty video, ``{"deleted": false}``;
- ``create_then_body``: create the video, then answer like ``body`` (a create whose answer
  cannot be read, although the video was made and will be billed);
- ``patch``: merge ``fields`` into the video answer of a create, retrieve or remix
  (``expires_at: 10**400``, ``"seconds": "²"``, an error that echoes the key, a status
  with terminal escapes);
- ``headers``: add or replace answer headers (an ``x-request-id`` with escapes, a ``Date``
  in year 9999, ``openai-poll-after-ms: ²``, ``retry-after: 1000000000`` on an error);
- ``drip``: send the answer one byte every ``delay_ms`` (a request that never ends);
- ``gzip``: a decompression bomb: a JSON answer of ``size`` bytes (default 64 MiB) sent
  gzip-compressed, or on content ``size`` zero bytes compressed with
  ``Content-Encoding: gzip`` although the client asked for identity.

In ``text``, ``fields`` and ``headers``, ``{api_key}`` stands for the key the client sent.
"""

from __future__ import annotations

import functools
import zlib
from typing import Final

from sora_cli.fake.faults import HUGE_DEFAULT, Fault
from sora_cli.fake.wire import WireHandler

KEY_MARK: Final = "{api_key}"
_BLOCK: Final = 1024 * 1024


def with_key(value: object, key: str) -> object:
    """``value`` with every ``{api_key}`` in its strings replaced by ``key``."""
    if isinstance(value, str):
        return value.replace(KEY_MARK, key)
    if isinstance(value, dict):
        return {k: with_key(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [with_key(v, key) for v in value]
    return value


class HostileHandler(WireHandler):
    """The hostile answers, as methods of the request handler (`fake.http.Handler`)."""

    def _arm(self, fault: Fault) -> None:
        """Set up what changes an answer on its way out: ``fields`` (merged into a video
        answer), ``headers`` (with any action), a drip."""
        key = self._offered_key
        if fault.fields and fault.action == "patch":
            patch = with_key(fault.fields, key)
            assert isinstance(patch, dict)
            self._patch = patch
        if fault.headers:
            self._extra_headers = {k: v.replace(KEY_MARK, key)
                                   for k, v in fault.headers.items()}
        if fault.action == "drip":
            self._drip = max(fault.delay_ms or 100, 1) / 1000

    def _answer_body(self, fault: Fault) -> None:
        """The ``body`` and ``create_then_body`` answer: ``text`` as it is."""
        text = (fault.text or "").replace(KEY_MARK, self._offered_key)
        data = text.encode("utf-8", errors="surrogateescape")
        content_type = fault.content_type or "application/json"
        self._start(fault.status if fault.action == "body" else 200,
                    {"Content-Type": content_type, "Content-Length": str(len(data))})
        self._write(data)

    def _gzip_bomb(self, fault: Fault, route: str) -> None:
        """JSON routes: a JSON answer of ``size`` bytes once decompressed; content:
        ``size`` zero bytes as a video; both gzip-compressed and said so."""
        as_json = route != "content"
        data = _bomb(fault.size or HUGE_DEFAULT, as_json)
        self._start(200, {"Content-Type": "application/json" if as_json else "video/mp4",
                          "Content-Encoding": "gzip", "Content-Length": str(len(data))})
        self._write(data)


@functools.lru_cache(maxsize=8)
def _bomb(size: int, as_json: bool) -> bytes:
    """`size` bytes (a JSON object padded with x, or zeros) gzip-compressed: made once
    per size, quickly (level 1), so the answer starts at once."""
    head, tail = (b'{"id": "video_bomb", "padding": "', b'"}') if as_json else (b"", b"")
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: the gzip container
    pieces = [compressor.compress(head)]
    block = (b"x" if as_json else b"\0") * _BLOCK
    left = max(size - len(head) - len(tail), 0)
    while left > 0:
        pieces.append(compressor.compress(block[:left]))
        left -= _BLOCK
    pieces += [compressor.compress(tail), compressor.flush()]
    return b"".join(pieces)
