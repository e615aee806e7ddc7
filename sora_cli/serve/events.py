"""`GET /api/events`: server-sent events, one `job` event (the job's JSON) per change.

One poller per server reads the store's change feed (see services.gallery.ChangeFeed)
every `interval` seconds while anyone listens, and fans the changes out to every stream,
all of a tick's events in one write: 200 open streams cost one query and 200 writes a
tick, not 200 queries. A stream that falls too far behind is closed (the browser
reconnects and reloads). A comment line every `heartbeat` seconds keeps proxies from
closing a quiet stream. The poller also starts a runner when there is unfinished work
and none is alive, as the CLI's reads do. Streams end when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Final, TypeVar

from sora_cli.domain.jobs import Job
from sora_cli.serve.contexts import Render
from sora_cli.services.context import Context
from sora_cli.services.gallery import ChangeFeed

QUEUE_LIMIT: Final = 240  # ticks of events a stream may lag behind before it is closed
RUNNER_CHECK: Final = 2.0  # seconds between runner checks
T = TypeVar("T")


class Hub:
    def __init__(self, ctx: Context, render: Render, *, interval: float = 0.5,
                 heartbeat: float = 15.0) -> None:
        self.ctx = ctx
        self.render = render
        self.interval = interval
        self.heartbeat = heartbeat
        self._streams: set[asyncio.Queue[str | None]] = set()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._store_lock = threading.Lock()  # the poller's store reads vs the final close
        self.generation = 0  # counts the ticks that changed something (see routes.Recent)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="sora-events")

    def close_soon(self) -> None:
        """`close()` from any thread, or from a signal handler."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.close)

    async def stop(self) -> None:
        self.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self._locked, self.ctx.close)  # after a poll in flight

    def close(self) -> None:
        """End every stream (the server is stopping); call in the event loop's thread."""
        self._closed = True
        for queue in list(self._streams):
            _offer(queue, None)

    async def stream(self) -> AsyncIterator[str]:
        """One client's event stream, as text chunks."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_LIMIT + 1)
        self._streams.add(queue)
        try:
            yield "retry: 2000\n: connected\n\n"
            while not self._closed:
                try:
                    chunk = await asyncio.wait_for(queue.get(), self.heartbeat)
                except TimeoutError:
                    chunk = ": keep-alive\n\n"
                if chunk is None:
                    return
                yield chunk
        finally:
            self._streams.discard(queue)

    async def _run(self) -> None:
        feed: ChangeFeed | None = None
        loop = asyncio.get_running_loop()
        next_check = 0.0
        while not self._closed:
            if self._streams and feed is None:
                feed = ChangeFeed(self.ctx)
            elif not self._streams:
                feed = None  # nobody listens: start afresh when someone does
            try:
                if feed is not None:
                    changes = await asyncio.to_thread(self._locked, feed.poll)
                    chunks = [self._job_event(j) for j in changes.jobs] + [
                        _gone_event(i) for i in changes.gone]
                    if chunks:  # one write per stream per tick, however many changed
                        self.generation += 1
                        self._publish("".join(chunks))
                if loop.time() >= next_check:
                    next_check = loop.time() + RUNNER_CHECK
                    await asyncio.to_thread(self._locked, self.ctx.kick_runner)
            except Exception as exc:  # a store hiccup: say so, keep the streams
                self._publish(f"event: problem\ndata: {json.dumps({'detail': str(exc)})}\n\n")
            await asyncio.sleep(self.interval)

    def _locked(self, work: Callable[[], T]) -> T:
        with self._store_lock:
            return work()

    def _job_event(self, job: Job) -> str:
        data = json.dumps(self.render(job), ensure_ascii=False, separators=(",", ":"))
        return f"event: job\ndata: {data}\n\n"

    def _publish(self, chunk: str) -> None:
        for queue in list(self._streams):
            if queue.qsize() >= QUEUE_LIMIT:
                self._streams.discard(queue)
                _offer(queue, None)  # too far behind: close it; the client reloads
            else:
                _offer(queue, chunk)


def _offer(queue: asyncio.Queue[str | None], item: str | None) -> None:
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(item)




def _gone_event(job_id: str) -> str:
    return f"event: gone\ndata: {json.dumps({'id': job_id})}\n\n"
