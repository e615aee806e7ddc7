"""Finding the remote video that an unanswered create may have made.

The server honours no idempotency key, so a create that timed out, got a 5xx or
lost its connection may still have made a billed job. Before anything is sent
again, the remote list is searched (newest first) for a video with the same
prompt, model, size and seconds, created no earlier than the attempt's start
(floored to the second), that no other local job already owns. The earliest
such video wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .api import OnAttempt, Video, VideosClient
from .jobs import Job

MAX_PAGES = 10  # 1,000 videos: more than that since the attempt and we cannot tell


@dataclass(frozen=True)
class Found:
    video: Video | None = None
    undecided: str | None = None  # why no answer can be given (then nothing is re-sent)


def matches(video: Video, job: Job, floor: int) -> bool:
    return (
        video.prompt == job.prompt
        and video.model == job.model
        and video.size == job.size
        and video.seconds == str(job.seconds)
        and video.created_at is not None
        and video.created_at >= floor
    )


async def find_created(client: VideosClient, job: Job, *, taken: Callable[[str], bool],
                       on_attempt: OnAttempt | None = None) -> Found:
    assert job.create_started_at is not None
    floor = int(job.create_started_at)
    best: Video | None = None
    seen = 0
    async for video in client.iter_recent(max_pages=MAX_PAGES, on_attempt=on_attempt):
        seen += 1
        if video.created_at is not None and video.created_at < floor:
            return Found(best)  # newest first: everything further is older
        if matches(video, job, floor) and not taken(video.id):
            best = video  # later in a desc list means created earlier: earliest wins
    if seen >= MAX_PAGES * 100:
        return Found(best, None if best else (
            f"more than {seen} remote videos were created since the attempt; cannot tell "
            "whether it made one, so it is not sent again (check the remote list)"))
    return Found(best)
