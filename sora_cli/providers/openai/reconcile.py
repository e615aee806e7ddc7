"""Finding the remote video that an unanswered create may have made.

The server honours no idempotency key, so a create that timed out, got a 5xx or
lost its connection may still have made a billed job. Before anything is sent
again, the remote list is searched (newest first) for a video with the same
prompt, model, size and seconds, created no earlier than the attempt's start
(floored to the second, and moved onto the server's clock when its Date header
shows that clock far from ours), that no other local job already owns. The
earliest such video wins; any other candidates are named, for the user to check.
A remix (also billed) is matched the same way, and on `remixed_from_video_id`: a
remix job adopts only a remix of its source, a create only a video that is no remix.
A size or seconds the job did not send (a named endpoint's server default) is not
compared. A recent listed video that does not say its prompt, model or creation time
could be the one: then nothing can be told, and nothing is sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sora_cli.domain.jobs import Job
from sora_cli.providers.openai.client import OnAttempt, Video, VideosClient
from sora_cli.providers.wire import to_server

MAX_PAGES = 10  # 1,000 videos: more than that since the attempt and we cannot tell


@dataclass(frozen=True)
class Found:
    video: Video | None = None
    undecided: str | None = None  # why no answer can be given (then nothing is re-sent)
    others: tuple[str, ...] = ()  # further candidates, not adopted


def matches(video: Video, job: Job, floor: int, remixed_from: str | None = None) -> bool:
    return (
        video.remixed_from_video_id == remixed_from  # a remix only for a remix job
        and video.prompt == job.prompt
        and video.model == job.model
        and (not job.size or video.size == job.size)
        and (not job.seconds or video.seconds == str(job.seconds))
        and video.created_at is not None
        and video.created_at >= floor
    )


def _silent(video: Video) -> bool:
    """A listed video that does not say enough to be told apart from the job's."""
    return video.prompt is None or video.model is None or video.created_at is None


async def find_created(client: VideosClient, job: Job, *, taken: Callable[[str], bool],
                       on_attempt: OnAttempt | None = None,
                       remixed_from: str | None = None,
                       list_params: Mapping[str, str] | None = None) -> Found:
    assert job.create_started_at is not None
    floor: int | None = None
    candidates: list[Video] = []  # newest first
    seen = 0
    after: str | None = None
    for _ in range(MAX_PAGES):
        answer = await client.list_page(after=after, on_attempt=on_attempt, extra=list_params)
        if floor is None:  # the attempt's start on the server's clock
            floor = int(to_server(job.create_started_at, answer.server_skew))
        page = answer.value
        for video in page.data:
            seen += 1
            if video.created_at is not None and video.created_at < floor:
                return _found(candidates)  # newest first: everything further is older
            if taken(video.id):
                continue
            if matches(video, job, floor, remixed_from):
                candidates.append(video)
            elif _silent(video):
                return Found(None, f"the server lists {video.id} without its prompt, model "
                             "or creation time: whether the unanswered create made it cannot "
                             "be told, so it is not sent again (check the server)")
        cursor = page.last_id or (page.data[-1].id if page.data else None)
        if not page.has_more or cursor is None or cursor == after:
            return _found(candidates)
        after = cursor
    if candidates:
        return _found(candidates)
    return Found(None, f"more than {seen} remote videos were created since the attempt; "
                 "cannot tell whether it made one, so it is not sent again (check the "
                 "remote list for this prompt)")


def _found(candidates: list[Video]) -> Found:
    if not candidates:
        return Found()
    earliest = candidates[-1]  # later in a desc list means created earlier
    return Found(earliest, others=tuple(v.id for v in reversed(candidates[:-1])))
