"""The jobs of the fake's queue-style families (fal requests, Replicate predictions,
Runway tasks, Luma generations, MiniMax tasks):
what was asked, when, and where each one stands by elapsed time, without HTTP.

A job is queued for the first tenth of ``job_seconds``, then running, then done:
failed when its prompt contains ``fail_prompt``, else with a video served by the fake's
CDN origin. Its input is checked against the model catalogue (the same data sora
ships), as the providers check their models' schemas.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sora_cli.domain.catalogue import ModelInfo, find_model
from sora_cli.fake.options import FakeOptions


@dataclass
class RemoteJob:
    id: str
    family: str  # "fal", "replicate", "runway", "luma", "minimax", "vertex", "kling"
    model: str  # the endpoint id / owner/name
    input: dict[str, Any]
    started: float  # monotonic, drives the state
    created: float  # wall clock
    will_fail: bool
    app: str = ""  # fal: owner/app; Vertex: the model's path; Kling: its endpoint
    cancelled_at: float | None = None  # wall clock
    prompt_text: str | None = None  # the prompt, when its field is not `prompt` (Runway)
    deleted: bool = False  # deleted at the provider (Runway, Luma): gone from its API
    cancelled_running: bool = False  # Runway: a cancel that found it running (no refund)

    @property
    def prompt(self) -> str:
        value = self.prompt_text if self.prompt_text is not None else self.input.get("prompt")
        return value if isinstance(value, str) else ""


@dataclass
class JobBook:
    """Every queue-style job the fake made, thread-safe, in creation order."""

    options: FakeOptions
    lock: threading.Lock = field(default_factory=threading.Lock)
    jobs: dict[str, RemoteJob] = field(default_factory=dict)
    order: list[RemoteJob] = field(default_factory=list)

    def add(self, family: str, model: str, payload: dict[str, Any], *, app: str = "",
            job_id: str | None = None, prompt: str | None = None) -> RemoteJob:
        fail = self.options.fail_prompt
        text = payload.get("prompt") if prompt is None else prompt
        job = RemoteJob(job_id or str(uuid.uuid4()), family, model, payload, time.monotonic(),
                        time.time(), bool(fail and isinstance(text, str) and fail in text),
                        app, prompt_text=prompt)
        with self.lock:
            self.jobs[job.id] = job
            self.order.append(job)
        return job

    def get(self, family: str, job_id: str) -> RemoteJob | None:
        with self.lock:
            job = self.jobs.get(job_id)
        return job if job is not None and job.family == family else None

    def find(self, job_id: str, families: tuple[str, ...] | None = None) -> RemoteJob | None:
        """A job of any family (or of one of `families`)."""
        with self.lock:
            job = self.jobs.get(job_id)
        return job if job is not None and (families is None or job.family in families) \
            else None

    def listed(self, family: str) -> list[RemoteJob]:
        """The family's jobs, newest first."""
        with self.lock:
            return [j for j in reversed(self.order) if j.family == family]

    def state(self, job: RemoteJob) -> str:
        """queued, running, failed, cancelled or succeeded."""
        if job.cancelled_at is not None:
            return "cancelled"
        elapsed = time.monotonic() - job.started
        total = self.options.job_seconds
        if elapsed >= total:
            return "failed" if job.will_fail else "succeeded"
        return "queued" if elapsed < total / 10 else "running"

    def ended_at(self, job: RemoteJob) -> float | None:
        """When it ended, on the fake's wall clock (None while it runs)."""
        if job.cancelled_at is not None:
            return job.cancelled_at
        if self.state(job) in ("queued", "running"):
            return None
        return job.created + self.options.job_seconds

    def expired(self, job: RemoteJob) -> bool:
        """Its output is gone (the fake's expire_seconds after it ended)."""
        ended = self.ended_at(job)
        return ended is not None and time.time() >= ended + self.options.expire_seconds

    def counts(self) -> tuple[int, dict[str, int]]:
        with self.lock:
            by_prompt: dict[str, int] = {}
            for job in self.order:
                by_prompt[job.prompt] = by_prompt.get(job.prompt, 0) + 1
            return len(self.order), by_prompt


def invalid_fields(family: str, model: str, payload: dict[str, Any], *,
                   prompt_field: str | None = "prompt") -> list[tuple[str, str]]:
    """(field, message) for each input field the catalogued model does not take."""
    problems: list[tuple[str, str]] = []
    prompt = payload.get(prompt_field) if prompt_field else "-"
    if not isinstance(prompt, str) or not prompt.strip():
        problems.append((str(prompt_field), "field required: a non-empty string"))
    info = find_model(family, model)
    if info is None:
        return problems
    problems.extend(_catalogued(info, payload))
    return problems


def _catalogued(info: ModelInfo, payload: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    seconds = info.seconds
    if seconds is not None and seconds.field in payload:
        allowed = [seconds.encode(v) for v in seconds.values] if seconds.values else [
            seconds.encode(v) for v in range(seconds.minimum, seconds.maximum + 1)]
        if payload[seconds.field] not in allowed:
            out.append((seconds.field, f"unexpected value; permitted: {allowed}"))
    if info.aspect_field and info.aspect_field in payload and \
            payload[info.aspect_field] not in info.aspects:
        out.append((info.aspect_field, f"unexpected value; permitted: {list(info.aspects)}"))
    if info.resolution_field and info.resolution_field in payload and \
            payload[info.resolution_field] not in info.resolutions.values():
        out.append((info.resolution_field,
                    f"unexpected value; permitted: {list(info.resolutions.values())}"))
    if info.image_required and info.image_field and not payload.get(info.image_field):
        out.append((info.image_field, "field required"))
    if info.size_field and info.size_field in payload:  # W:H in pixels (Runway's ratio)
        allowed = [s.replace("x", ":") for s in info.sizes]
        if payload[info.size_field] not in allowed:
            out.append((info.size_field, f"unexpected value; permitted: {allowed}"))
    out.extend(_too_long(info, payload))
    return out


def _too_long(info: ModelInfo, payload: dict[str, Any]) -> list[tuple[str, str]]:
    """A length the model does not make at the resolution asked for."""
    if info.seconds is None or not info.resolution_field:
        return []
    side = next((k for k, v in info.resolutions.items()
                 if v == payload.get(info.resolution_field)), info.default_resolution)
    wanted = str(payload.get(info.seconds.field, "")).removesuffix("s")
    if side is None or not wanted.isdigit() or info.takes_seconds_at(side, int(wanted)):
        return []
    return [(info.seconds.field, f"{info.resolutions.get(side, side)} supports at most "
             f"{info.max_seconds[side]} seconds")]
