"""Saving a video to disk safely.

The bytes stream into a private temp file next to ``dest`` (a random name, created
``O_EXCL|O_NOFOLLOW``, mode 0600), hashed as they arrive, never held in memory whole;
a body shorter than announced is resumed with a Range request (or restarted when the
server ignores Range); the file is fsynced and given its final name atomically, and
only exclusively (never over a file that appeared meanwhile) unless replacing was
asked for. Nothing ever appears at ``dest`` unless it is complete, and a failed
download leaves no temp file behind.

What the server sends is held to account: the body is saved as sent (an encoding not
asked for, HTML, JSON or text is refused), never more than it declared (or
MAX_DOWNLOAD_BYTES), never less than a minimum size, and within a total deadline:
the headers within ``request_timeout``, the body at MIN_TRANSFER_RATE or better.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import hashlib
import os
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sora_cli.errors import ApiError, InvalidInput, SoraError, TransportError
from sora_cli.files import create_temp, publish
from sora_cli.providers.answers import transport_retryable
from sora_cli.providers.content import check_body_size
from sora_cli.providers.limits import MAX_DOWNLOAD_BYTES, MIN_TRANSFER_RATE
from sora_cli.providers.openai.client import (
    Attempt,
    ContentStream,
    OnAttempt,
    VideosClient,
    valid_video_id,
)
from sora_cli.providers.retry import MAX_HINT_SECONDS, backoff_delay

# Opens the result's bytes from an offset (one GET; a Range request when > 0).
Opener = Callable[[int], AbstractAsyncContextManager[ContentStream]]

REHASH_BLOCK: Final = 1024 * 1024
WRITE_BLOCK: Final = 1024 * 1024  # bytes handed to the writer thread at a time
_FADVISE: Final = hasattr(os, "posix_fadvise") and hasattr(os, "POSIX_FADV_DONTNEED")
_WRITER: Final = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="sora-write")


@dataclass(frozen=True)
class Saved:
    path: Path
    bytes: int
    sha256: str


class _Restart(Exception):
    """The server's answer cannot continue the partial file: start over without Range."""


class _TooSlow(Exception):
    """The body came slower than MIN_TRANSFER_RATE (a server dripping bytes)."""


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class _Partial:
    """The private temp file, its size and the running sha256 of its content."""

    def __init__(self, dest: Path) -> None:
        self.path, self.fd = create_temp(dest)  # random name, O_EXCL|O_NOFOLLOW, 0600
        self.size = 0
        self.hash = hashlib.sha256()
        self._chunks: list[bytes] = []  # taken, not yet handed to the writer thread
        self._taken = 0
        self._pending: concurrent.futures.Future[None] | None = None

    async def write(self, chunk: bytes) -> None:
        """Take a received chunk. Writing and hashing run in a thread, one block behind,
        so that the next bytes arrive meanwhile; `size` counts what was taken."""
        self._chunks.append(chunk)
        self._taken += len(chunk)
        self.size += len(chunk)
        if self._taken >= WRITE_BLOCK:
            await self._hand_over()

    async def flush(self) -> None:
        """Everything taken so far is written and hashed."""
        await self._hand_over()
        await self._settle()

    async def _settle(self) -> None:
        if self._pending is not None:
            await asyncio.wrap_future(self._pending)
            self._pending = None

    async def _hand_over(self) -> None:
        await self._settle()  # one block in the thread at a time: order kept, memory bounded
        if self._chunks:
            chunks, self._chunks, self._taken = self._chunks, [], 0
            self._pending = _WRITER.submit(self._write_block, chunks)

    def _write_block(self, chunks: list[bytes]) -> None:
        start = os.lseek(self.fd, 0, os.SEEK_CUR)
        for chunk in chunks:
            _write_all(self.fd, chunk)
            self.hash.update(chunk)
        if _FADVISE:  # start writing these pages back now: the final fsync has less to do
            with contextlib.suppress(OSError):
                os.posix_fadvise(self.fd, start, os.lseek(self.fd, 0, os.SEEK_CUR) - start,
                                 os.POSIX_FADV_DONTNEED)

    def rewind(self, offset: int) -> None:
        """Cut the file to ``offset`` bytes and re-hash what stays, from the disk."""
        os.ftruncate(self.fd, offset)
        os.lseek(self.fd, offset, os.SEEK_SET)
        self.hash, self.size = hashlib.sha256(), 0
        while self.size < offset:
            block = os.pread(self.fd, min(REHASH_BLOCK, offset - self.size), self.size)
            if not block:
                raise OSError(errno.EIO, "partial file shorter than expected")
            self.hash.update(block)
            self.size += len(block)

    async def commit(self, dest: Path, *, replace: bool) -> None:
        await self.flush()
        # The fsyncs wait for the disk: in a thread, so that the runner's other jobs go
        # on meanwhile. Cancelling leaves the thread to finish; it uses no shared state.
        await asyncio.to_thread(os.fsync, self.fd)
        os.close(self.fd)
        self.fd = -1
        publish(self.path, dest, replace=replace)  # exclusive unless replacing was asked
        await asyncio.to_thread(_fsync_dir, dest.parent)

    def discard(self) -> None:
        if self._pending is not None:  # never close the fd under a write in flight
            with contextlib.suppress(Exception):
                self._pending.result()
            self._pending = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.path.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # not every filesystem can; the rename is done
            os.fsync(fd)
    finally:
        os.close(fd)


def _disk_error(dest: Path, exc: OSError) -> SoraError:
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return SoraError(f"cannot write {dest}: {reason}")


async def download_to(
    client: VideosClient,
    video_id: str,
    dest: Path,
    *,
    variant: str = "video",
    max_attempts: int = 6,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_progress: Callable[[int, int | None], None] | None = None,
    on_attempt: OnAttempt | None = None,
    rng: random.Random | None = None,
    replace: bool = True,
) -> Saved:
    """Download one variant of ``video_id`` to ``dest``; returns its size and sha256.
    Without ``replace``, an existing ``dest`` is never overwritten (InvalidInput)."""
    if not valid_video_id(video_id):
        raise InvalidInput(f"invalid video id {video_id[:140]!r}")

    def opener(offset: int) -> AbstractAsyncContextManager[ContentStream]:
        return client.stream_content(video_id, variant=variant, offset=offset)

    return await download_from(opener, dest, name=video_id, path=f"/videos/{video_id}/content",
                               max_attempts=max_attempts, sleep=sleep, on_progress=on_progress,
                               on_attempt=on_attempt, rng=rng, variant=variant,
                               timeout=client.request_timeout, replace=replace)


async def download_from(
    opener: Opener,
    dest: Path,
    *,
    name: str,
    path: str,
    max_attempts: int = 6,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_progress: Callable[[int, int | None], None] | None = None,
    on_attempt: OnAttempt | None = None,
    rng: random.Random | None = None,
    variant: str = "video",
    timeout: float = 60.0,
    replace: bool = True,
) -> Saved:
    """Download what ``opener`` serves to ``dest`` (any provider's result); ``name`` (the
    remote id) and ``path`` (for the attempt log) only describe it. ``variant`` is what
    the body must be (see content.check_video_answer), ``timeout`` the request timeout
    (the headers within it, the body at MIN_TRANSFER_RATE after it); without
    ``replace``, an existing ``dest`` is never overwritten (InvalidInput)."""
    try:
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        part = _Partial(dest)
    except OSError as exc:
        raise _disk_error(dest, exc) from exc
    try:
        job = _Download(opener, name, path, part, dest, on_progress, variant, timeout)
        await job.run(max(1, max_attempts), sleep, on_attempt, rng)
        await part.commit(dest, replace=replace)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            part.discard()
        if isinstance(exc, OSError):
            raise _disk_error(dest, exc) from exc
        raise
    return Saved(path=dest, bytes=part.size, sha256=part.hash.hexdigest())


class _Download:
    def __init__(self, opener: Opener, video_id: str, path: str, part: _Partial, dest: Path,
                 on_progress: Callable[[int, int | None], None] | None, variant: str,
                 timeout: float) -> None:
        self.opener, self.video_id, self.path = opener, video_id, path
        self.part, self.dest, self.on_progress = part, dest, on_progress
        self.variant, self.timeout = variant, timeout
        self.use_range = True
        self.total: int | None = None
        self.status: int | None = None
        self.request_id: str | None = None

    async def run(self, max_attempts: int, sleep: Callable[[float], Awaitable[None]],
                  on_attempt: OnAttempt | None, rng: random.Random | None) -> None:
        for number in range(1, max_attempts + 1):
            self.status = self.request_id = None
            try:
                if await self._attempt():
                    _report(on_attempt, Attempt("GET", self.path, number, self.status,
                                                self.request_id, None, None))
                    return
                error: SoraError = TransportError(
                    f"the download of {self.video_id} stopped at {self.part.size} of "
                    f"{self.total} bytes", sent=True)
                delay: float | None = backoff_delay(number - 1, rng)
            except _Restart as exc:
                self.use_range = False
                error, delay = TransportError(str(exc), sent=True), 0.0
            except (_TooSlow, TimeoutError) as exc:
                error = TransportError(str(exc) or f"no answer within {self.timeout:g} s",
                                       sent=True)
                delay = backoff_delay(number - 1, rng)
            except ApiError as exc:
                self.status, self.request_id = exc.http_status, exc.request_id
                error, delay = self._api_failure(exc), _delay_for(exc, number, rng)
            except TransportError as exc:
                retryable = transport_retryable(exc)
                error, delay = exc, backoff_delay(number - 1, rng) if retryable else None
            if number == max_attempts:
                delay = None
            short = (f"HTTP {error.http_status}: {error.message}"
                     if isinstance(error, ApiError) else str(error))
            _report(on_attempt, Attempt("GET", self.path, number, self.status,
                                        self.request_id, short, delay))
            if delay is None:
                raise error
            await sleep(delay)

    async def _attempt(self) -> bool:
        """One GET; True when the file is complete (or no size was announced)."""
        part = self.part
        await part.flush()  # what earlier attempts received is on disk before any rewind
        offset = part.size if self.use_range else 0
        if part.size:
            part.rewind(offset)  # resuming re-hashes the bytes on disk; restarting empties
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(self.timeout):  # the answer's headers, in time
                stream = await stack.enter_async_context(self.opener(offset))
            self.status, self.request_id = stream.status, stream.request_id
            stream.check(self.variant)  # an encoded body, HTML, JSON: not saved
            self._align(stream)
            await self._receive(stream)
        complete = self.total is None or part.size == self.total
        if complete:
            check_body_size(part.size, self.variant)  # an empty 200 is no video
        return complete

    async def _receive(self, stream: ContentStream) -> None:
        """The body into the partial file, held to the declared size (or the cap) and
        to MIN_TRANSFER_RATE after `request_timeout` (per-read timeouts alone never end
        a body dripped a byte at a time)."""
        part, loop = self.part, asyncio.get_running_loop()
        started, received = loop.time(), 0
        cap = self.total if self.total is not None else MAX_DOWNLOAD_BYTES
        async for chunk in stream.chunks():
            await part.write(chunk)
            received += len(chunk)
            if part.size > cap:
                if self.total is not None:
                    raise _Restart(f"the server sent more than the announced {cap} bytes")
                raise SoraError(f"the {self.variant} of {self.video_id} is larger than "
                                f"{cap >> 30} GiB; not saved")
            if loop.time() - started > self.timeout + received / MIN_TRANSFER_RATE:
                raise _TooSlow(f"the server sent the {self.variant} slower than "
                               f"{MIN_TRANSFER_RATE >> 10} KiB/s")
            if self.on_progress is not None:
                self.on_progress(part.size, self.total)

    def _align(self, stream: ContentStream) -> None:
        """Make the partial file match where the server's answer starts."""
        changed = self.total is not None and stream.total_size not in (None, self.total)
        if changed and stream.start != 0:
            raise _Restart("the file changed on the server between attempts")
        self.total = stream.total_size
        if stream.start > self.part.size:
            raise _Restart(f"the server resumed at byte {stream.start}, past the partial file")
        if stream.start != self.part.size:
            self.part.rewind(stream.start)  # a 200 to a Range request: start over from zero

    def _api_failure(self, exc: ApiError) -> ApiError:
        if exc.http_status == 404:
            return ApiError(
                f"{self.video_id} is no longer available on the server (expired or deleted)",
                http_status=404, code="expired_or_missing", request_id=exc.request_id)
        if exc.http_status == 416 or exc.code in ("bad_range", "bad_content"):
            self.use_range = False  # start over: what was received is no part of the file
        return exc


def _delay_for(exc: ApiError, number: int, rng: random.Random | None) -> float | None:
    if exc.http_status == 416 or exc.code == "bad_range":
        return 0.0  # retry at once without Range
    if not exc.retryable:
        return None
    hint = exc.retry_after
    if hint is not None and hint > MAX_HINT_SECONDS:
        return None
    return hint if hint is not None and hint > 0 else backoff_delay(number - 1, rng)


def _report(on_attempt: OnAttempt | None, attempt: Attempt) -> None:
    if on_attempt is not None:
        on_attempt(attempt)
