"""The in-memory state of the fake Videos API, and its rules, without HTTP: videos and
their progression by elapsed time, list paging, deletes and remixes, the request log
and counters. Scheduled and random faults are kept by a `FaultPlan`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Final

from sora_cli.fake.content import CONTENT_TYPES, content_size
from sora_cli.fake.dialects import backend_of, check_remix, list_backend, new_id, status_word
from sora_cli.fake.errors import ApiFailure
from sora_cli.fake.faults import Fault, FaultPlan
from sora_cli.fake.jobs import JobBook
from sora_cli.fake.oauth import GoogleAuth
from sora_cli.fake.options import FakeOptions
from sora_cli.fake.routes import route_name
from sora_cli.fake.validate import CreateRequest, validate_remix

MODERATION: Final = {
    "code": "moderation_blocked",
    "message": "Your request was blocked by our moderation system.",
}


@dataclass
class Video:
    id: str
    request: CreateRequest
    started: float  # monotonic, drives the status
    created: float  # wall clock
    will_fail: bool
    remixed_from: str | None = None
    deleted: bool = False


class Backend:
    """The API's state and rules, without HTTP. Every method is thread-safe."""

    def __init__(self, options: FakeOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._videos: dict[str, Video] = {}
        self._order: list[Video] = []
        self.faults = FaultPlan(options, self._lock)
        self._log: list[tuple[str, str, int]] = []
        self._by_route: dict[str, int] = {}
        self._counters: dict[str, int] = {}
        self.remote = JobBook(options)  # fal, Replicate, Vertex and Kling jobs
        self.google = GoogleAuth(dict(options.google_keys))  # service accounts, tokens

    # -- videos
    def create(self, request: CreateRequest, remixed_from: str | None = None) -> Video:
        fail = self.options.fail_prompt
        with self._lock:
            video = Video(
                id=new_id(self.options.dialect, request.model, self.options.quirks),
                request=request,
                started=time.monotonic(),
                created=time.time(),
                will_fail=bool(fail and fail in request.prompt),
                remixed_from=remixed_from,
            )
            self._videos[video.id] = video
            self._order.append(video)
        return video

    def get(self, video_id: str) -> Video:
        with self._lock:
            video = self._videos.get(video_id)
        if video is None or video.deleted:
            raise ApiFailure(
                404,
                f"Video with id '{video_id}' not found.",
                param="video_id",
                code="video_not_found",
            )
        return video

    def status(self, video: Video) -> tuple[str, int]:
        total = self.options.job_seconds
        elapsed = time.monotonic() - video.started
        if elapsed >= total:
            return ("failed", 0) if video.will_fail else ("completed", 100)
        if elapsed < total / 10:
            return "queued", 0
        return "in_progress", min(99, max(1, int(100 * elapsed / total)))

    def view(self, video: Video) -> dict[str, object]:
        status, progress = self.status(video)
        finished = status in ("completed", "failed")
        created_at = int(video.created + self.options.clock_offset)
        request = video.request
        return {
            "id": video.id,
            "object": "video",
            "model": request.model,
            "status": status_word(self.options.dialect, request.model, status,
                                  self.options.quirks),
            "progress": progress,
            "created_at": created_at,
            "completed_at": int(video.created + self.options.clock_offset
                                + self.options.job_seconds) if finished else None,
            "expires_at": created_at + self.options.expire_seconds
            if status == "completed"
            else None,
            "prompt": request.prompt,
            "size": request.size,
            "seconds": request.seconds,
            "remixed_from_video_id": video.remixed_from,
            "error": dict(MODERATION) if status == "failed" else None,
        }

    def list_page(self, query: dict[str, str]) -> dict[str, object]:
        limit_text = query.get("limit", "20")
        if not limit_text.isdigit() or int(limit_text) > 100:
            raise ApiFailure(
                400,
                f"Invalid 'limit': expected an integer 0..100, got '{limit_text}'.",
                param="limit",
                code="invalid_value",
            )
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise ApiFailure(
                400,
                f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.",
                param="order",
                code="invalid_value",
            )
        with self._lock:
            ordered = list(self._order) if order == "asc" else self._order[::-1]
        start = 0
        after = query.get("after")
        if after:
            ids = [video.id for video in ordered]
            if after not in ids:
                raise ApiFailure(
                    400,
                    f"Invalid 'after': no video with id '{after}'.",
                    param="after",
                    code="invalid_value",
                )
            start = ids.index(after) + 1
        backend = list_backend(self.options.dialect, query, self.options.quirks)
        rest = [video for video in ordered[start:] if not video.deleted
                and (backend is None or backend_of(video.request.model) == backend)]
        page = [self.view(video) for video in rest[: int(limit_text)]]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(rest) > len(page),
        }

    def delete(self, video_id: str) -> dict[str, object]:
        video = self.get(video_id)
        status, _ = self.status(video)
        if status not in ("completed", "failed"):
            raise ApiFailure(
                400,
                f"Video '{video_id}' is {status}; only completed or failed videos can be deleted.",
                param="video_id",
            )
        with self._lock:
            video.deleted = True
        return {"id": video_id, "object": "video.deleted", "deleted": True}

    def remix(self, video_id: str, body: dict[str, object]) -> Video:
        source = self.get(video_id)
        check_remix(self.options.dialect, source.request.model)
        status, _ = self.status(source)
        if status != "completed":
            raise ApiFailure(
                400,
                f"Video '{video_id}' is {status}; only completed videos can be remixed.",
                param="video_id",
            )
        prompt = validate_remix(body)
        old = source.request
        return self.create(CreateRequest(prompt, old.model, old.seconds, old.size), video_id)

    def inspect(self, video_id: str) -> dict[str, object]:
        """What the fake knows of a video (deleted ones too), for tests: its view, the
        input_reference it was created with, whether it was deleted."""
        with self._lock:
            video = self._videos.get(video_id)
        if video is None:
            raise ApiFailure(404, f"Video with id '{video_id}' not found.")
        return {**self.view(video), "input_reference": video.request.reference,
                "deleted": video.deleted}

    def content_info(self, video_id: str, variant: str) -> tuple[int, str]:
        if variant not in CONTENT_TYPES:
            raise ApiFailure(
                400,
                f"Invalid value: '{variant}'. Supported values are: 'video', "
                "'thumbnail', and 'spritesheet'.",
                param="variant",
                code="invalid_value",
            )
        video = self.get(video_id)
        status, _ = self.status(video)
        if status != "completed":
            raise ApiFailure(
                404,
                f"Video '{video_id}' is {status}; its content is not available.",
                code="video_not_ready",
            )
        if time.time() >= int(video.created) + self.options.expire_seconds:
            raise ApiFailure(
                404, f"The assets of video '{video_id}' have expired.", code="video_expired"
            )
        return content_size(variant, self.options.video_bytes), CONTENT_TYPES[variant]

    # -- faults and bookkeeping
    def add_faults(self, faults: tuple[Fault, ...]) -> None:
        self.faults.add(faults)

    def take_fault(self, route: str, prompt: str | None) -> Fault | None:
        return self.faults.take(route, prompt)

    def random_fault(self, route: str) -> Fault | None:
        return self.faults.random_fault(route)

    def count(self, name: str) -> None:
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + 1

    def record(self, method: str, path: str, status: int, route: str | None = None) -> None:
        route = route or route_name(method, path)
        with self._lock:
            self._log.append((method, path, status))
            self._by_route[route] = self._by_route.get(route, 0) + 1

    def request_log(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return list(self._log)

    def create_count(self, prompt: str | None = None) -> int:
        total, by_prompt = self.remote.counts()
        with self._lock:
            videos = sum(1 for v in self._order if prompt is None or v.request.prompt == prompt)
        return videos + (total if prompt is None else by_prompt.get(prompt, 0))

    def stats(self) -> dict[str, object]:
        remote, by_prompt = self.remote.counts()  # every family's creates count
        with self._lock:
            for video in self._order:
                by_prompt[video.request.prompt] = by_prompt.get(video.request.prompt, 0) + 1
            return {
                "creates": len(self._order) + remote,
                "creates_by_prompt": by_prompt,
                "requests": len(self._log),
                "requests_by_route": dict(self._by_route),
                "faults_pending": self.faults.pending(),
                "counters": dict(self._counters),
            }
