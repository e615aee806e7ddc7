"""The commands that talk to the API themselves: `delete --remote` and `import`.

httpx is imported inside these functions only: the CLI registers its commands
without paying for it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from sora_cli.domain.jobs import Job
from sora_cli.domain.text import clean
from sora_cli.errors import ApiError, InvalidInput, JobNotFound
from sora_cli.services.context import Context, require_key
from sora_cli.store.housekeeping import RemoteVideo

if TYPE_CHECKING:
    from sora_cli.providers.openai.client import Video, VideosClient

MAX_LIST_PAGES: Final = 100  # 10,000 remote videos
_VIDEO_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def _client(ctx: Context) -> VideosClient:
    from sora_cli.providers.openai.client import VideosClient
    from sora_cli.providers.openai.settings import api_settings

    return VideosClient(api_settings(ctx.settings))


# --- cancel ---------------------------------------------------------------------------------


def cancel_remote(ctx: Context, job: Job) -> str | None:
    """Cancel a sent job at its provider, when the provider can; the note for the user
    (None: the provider cannot, the job is only no longer tracked)."""
    from sora_cli.domain.providers import BUILTIN, CANCEL
    from sora_cli.errors import TransportError
    from sora_cli.providers.base import Cancels
    from sora_cli.providers.registry import Adapters

    info = BUILTIN.get(job.provider)
    if info is None:
        from sora_cli.services.providers import can

        if not can(ctx.settings, job.provider, CANCEL):
            return None
    elif CANCEL not in info.capabilities:
        return None
    require_key(ctx.settings, job.provider)

    async def go() -> str:
        async with Adapters(ctx.settings) as adapters:
            adapter = adapters.get(job.provider)
            if not isinstance(adapter, Cancels):
                return f"{job.provider} cannot cancel: no longer tracked, it may still run"
            return await adapter.cancel(job)

    try:
        return asyncio.run(go())
    except (ApiError, TransportError) as exc:
        return (f"{job.provider} did not confirm the cancel ({exc}); no longer tracked: it "
                "may still run and be billed")


# --- delete --remote ------------------------------------------------------------------


@dataclass
class RemoteDeletes:
    done: list[Job] = field(default_factory=list)  # remote video gone (or never made)
    failed: list[tuple[Job, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def delete_remote(ctx: Context, jobs: Sequence[Job]) -> RemoteDeletes:
    """DELETE each job's remote video; a 404 (already gone) counts as done."""
    result = RemoteDeletes()
    sent = [j for j in jobs if j.remote_id is not None]
    result.done.extend(j for j in jobs if j.remote_id is None)
    if not sent:
        return result
    for provider in dict.fromkeys(j.provider for j in sent):
        require_key(ctx.settings, provider)

    async def go() -> None:
        from sora_cli.providers.base import Deletes
        from sora_cli.providers.registry import Adapters

        async with Adapters(ctx.settings) as adapters:
            for job in sent:
                assert job.remote_id is not None
                adapter = adapters.get(job.provider)
                if not isinstance(adapter, Deletes):
                    result.failed.append((job, f"{job.provider} cannot delete remote videos"))
                    continue
                try:
                    deleted = await adapter.delete(job)
                except ApiError as exc:
                    result.failed.append((job, str(exc)))
                    continue
                if deleted:
                    result.notes.append(f"deleted remote video {clean(job.remote_id)}")
                else:
                    result.notes.append(f"{clean(job.remote_id)} was already gone from the "
                                        "server")
                result.done.append(job)

    asyncio.run(go())
    return result


# --- import -------------------------------------------------------------------------------


@dataclass
class Imported:
    jobs: list[Job] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_video_ids(ids: Sequence[str]) -> list[str]:
    out: list[str] = []
    for video_id in ids:
        if _VIDEO_ID.fullmatch(video_id) is None:
            raise InvalidInput(f"not a remote video id: {video_id[:140]!r}")
        if video_id not in out:
            out.append(video_id)
    return out


def import_videos(ctx: Context, ids: Sequence[str], *, remote_list: bool) -> Imported:
    """Import remote videos as `running` jobs for the runner to wait on and download.

    Named ids are all fetched first: an unknown one (exit 3) records nothing. With
    `remote_list`, every listed video that is not failed or expired is imported.
    """
    if remote_list == bool(ids):
        raise InvalidInput("give remote video ids or --remote-list (one of them)")
    from sora_cli.services.recover import recoverable, revive

    others = [i for i in ids if ":" in i]  # PROVIDER:ID: another provider's job
    wanted = check_video_ids([i for i in ids if ":" not in i])
    if wanted or remote_list:
        require_key(ctx.settings)
    result = Imported()
    known = {v: job for v in wanted if (job := ctx.store.job_by_remote_id(v)) is not None}
    for video_id, job in known.items():
        if not recoverable(job):
            result.notes.append(f"{video_id} is already job {job.id}: skipped")
    again = [j for j in known.values() if recoverable(j)]
    looked = []
    if others:
        from sora_cli.services.importing import lookup_all, split_ref

        theirs = {ref: ctx.store.job_by_remote_id(split_ref(ref, ctx.settings)[1])
                  for ref in others}
        again += [j for j in theirs.values() if j is not None and recoverable(j)]
        looked = lookup_all(ctx, [r for r, j in theirs.items() if j is None or
                                  not recoverable(j)])
    # a job that failed or expired here while its provider may still have the video
    revived, notes = revive(ctx, again)
    result.jobs.extend(revived)
    result.notes.extend(notes)
    wanted = [v for v in wanted if v not in known]
    videos = asyncio.run(_fetch(ctx, wanted, remote_list, result)) if wanted or remote_list \
        else []
    records = [_record(ctx, v, skew) for v, skew in videos]
    for record in looked:
        if ctx.store.job_by_remote_id(record.remote_id) is not None:
            result.notes.append(f"{record.provider}:{record.remote_id} is already in the store: "
                                "skipped")
        else:
            records.append(record)
    for job in ctx.store.import_videos(records):
        if job is not None:
            result.jobs.append(job)
    if result.jobs:
        ctx.kick_runner()
    return result


async def _fetch(ctx: Context, ids: Sequence[str], remote_list: bool,
                 result: Imported) -> list[tuple[Video, float | None]]:
    found: list[tuple[Video, float | None]] = []
    async with _client(ctx) as client:
        for video_id in ids:
            try:
                answer = await client.retrieve(video_id)
            except ApiError as exc:
                if exc.http_status == 404:
                    raise JobNotFound(f"no remote video {video_id} (or it was deleted); "
                                      "nothing imported") from None
                raise
            found.append((answer.value, answer.server_skew))
        if remote_list:
            found.extend(await _listed(ctx, client, result))
    return found


async def _listed(ctx: Context, client: VideosClient,
                  result: Imported) -> list[tuple[Video, float | None]]:
    from sora_cli.providers.wire import to_local

    found: list[tuple[Video, float | None]] = []
    skipped = known = 0
    after: str | None = None
    for _ in range(MAX_LIST_PAGES):
        answer = await client.list_page(after=after)
        page = answer.value
        for video in page.data:
            expires = to_local(video.expires_at, answer.server_skew)
            if ctx.store.job_by_remote_id(video.id) is not None:
                known += 1
            elif video.status == "failed" or (expires is not None and expires < time.time()):
                skipped += 1
            else:
                found.append((video, answer.server_skew))
        cursor = page.last_id or (page.data[-1].id if page.data else None)
        if not page.has_more or cursor is None or cursor == after:
            break
        after = cursor
    if known:
        result.notes.append(f"{known} listed video(s) already in the store: skipped")
    if skipped:
        result.notes.append(f"{skipped} failed or expired video(s): skipped")
    found.reverse()  # oldest first, like the jobs they become
    return found


def _record(ctx: Context, video: Video, skew: float | None) -> RemoteVideo:
    from sora_cli.providers.limits import ascii_int
    from sora_cli.providers.wire import to_local

    source = None
    if video.remixed_from_video_id:
        source = ctx.store.job_by_remote_id(video.remixed_from_video_id)
    seconds = ascii_int(video.seconds) or 0  # "²" is a digit to str.isdigit, not to int
    return RemoteVideo(
        remote_id=video.id, prompt=video.prompt or "", model=video.model or "unknown",
        size=video.size or "unknown", seconds=seconds if seconds <= 3600 else 0,
        remote_status=video.status, progress=video.progress,
        submitted_at=to_local(video.created_at, skew),
        expires_at=to_local(video.expires_at, skew),
        remix_of=source.id if source is not None else None)
