"""The domain: a job, its lifecycle, request validation and the price estimate.

Pure rules, no I/O: nothing here imports an HTTP, database or terminal library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final

from sora_cli.errors import IllegalTransition, InvalidInput


class JobStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTING = "submitting"
    RUNNING = "running"
    DOWNLOADING = "downloading"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # the server deleted the video before it was saved

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATUSES

    @property
    def is_unsuccessful(self) -> bool:
        """Final without a saved video: what `wait` reports as a failure (exit 1)."""
        return self in UNSUCCESSFUL_STATUSES

    @property
    def is_final(self) -> bool:
        return not self.is_active


ACTIVE_STATUSES: Final = frozenset(
    {JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.RUNNING, JobStatus.DOWNLOADING}
)
UNSUCCESSFUL_STATUSES: Final = frozenset(
    {JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED}
)

_S = JobStatus
# Every legal move. `submitting -> queued` is taken only when the create provably
# never reached the server; `failed -> downloading` when a later download of a
# remotely completed video is attempted again; `failed`/`expired` -> `running` or
# `completed` when `sora import` or `sora download` recovers a job that failed here
# while the provider still had its video (a paid video is never abandoned).
TRANSITIONS: Final[dict[JobStatus, frozenset[JobStatus]]] = {
    _S.QUEUED: frozenset({_S.SUBMITTING, _S.FAILED, _S.CANCELLED}),
    _S.SUBMITTING: frozenset({_S.QUEUED, _S.RUNNING, _S.FAILED, _S.CANCELLED}),
    _S.RUNNING: frozenset({_S.DOWNLOADING, _S.FAILED, _S.CANCELLED, _S.EXPIRED}),
    _S.DOWNLOADING: frozenset({_S.COMPLETED, _S.FAILED, _S.CANCELLED, _S.EXPIRED}),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset({_S.RUNNING, _S.DOWNLOADING, _S.COMPLETED, _S.EXPIRED}),
    _S.CANCELLED: frozenset(),
    _S.EXPIRED: frozenset({_S.RUNNING, _S.COMPLETED}),
}



def check_transition(job_id: str, src: JobStatus, dst: JobStatus) -> None:
    if dst not in TRANSITIONS[src]:
        raise IllegalTransition(job_id, src, dst)


# --- request validation ------------------------------------------------------

MAX_PROMPT_CHARS: Final = 32000
ALLOWED_SECONDS: Final = (4, 8, 12)
SIZES_720P: Final = ("720x1280", "1280x720")
SIZES_PRO: Final = (*SIZES_720P, "1024x1792", "1792x1024")
DEFAULT_MODEL: Final = "sora-2"
DEFAULT_SIZE: Final = "720x1280"
DEFAULT_SECONDS: Final = 4


# A family name alone, or a dated snapshot of it ("sora-2-pro-2025-10-06").
_FAMILY: Final = re.compile(r"(sora-2(?:-pro)?)(?:-[0-9]{4}-[0-9]{2}-[0-9]{2})?")
_SIZE: Final = re.compile(r"[1-9][0-9]{0,4}x[1-9][0-9]{0,4}")


def model_family(model: str) -> str | None:
    """`sora-2` or `sora-2-pro` for a model of that family, else None (a model we
    know nothing about: "sora-20" or "sora-2-mini" are not sora-2 snapshots)."""
    m = _FAMILY.fullmatch(model)
    return m.group(1) if m else None


def sizes_for(model: str) -> tuple[str, ...] | None:
    """Sizes a model accepts, or None for a model we know nothing about (passed through)."""
    family = model_family(model)
    if family == "sora-2-pro":
        return SIZES_PRO
    if family == "sora-2":
        return SIZES_720P
    return None


@dataclass(frozen=True)
class VideoRequest:
    prompt: str
    model: str = DEFAULT_MODEL
    size: str = DEFAULT_SIZE
    seconds: int = DEFAULT_SECONDS
    label: str | None = None  # free text for grouping (batches); shown and filterable
    image: str | None = None  # image reference: a file under SORA_HOME/inputs, or a URL
    remix_of: str | None = None  # local id of the completed job this one remixes
    retry_of: str | None = None  # local id of the failed/cancelled job this one retries
    provider: str = "openai"  # whose model: `model` is that provider's id, no prefix
    # The model's input fields besides the prompt and the image: --seconds/--size mapped
    # onto them (catalogued models), then --param values over those. Sent as they are.
    params: Mapping[str, Any] | None = None


def parse_seconds(value: str | int) -> int:
    try:
        seconds = int(str(value).strip())
    except ValueError:
        raise InvalidInput(f"--seconds must be one of 4, 8, 12 (got {value!r})") from None
    if seconds not in ALLOWED_SECONDS:
        raise InvalidInput(f"--seconds must be one of 4, 8, 12 (got {seconds})")
    return seconds


def validate_request(req: VideoRequest) -> VideoRequest:
    """Check a request before anything is recorded; raise InvalidInput with one clear line.

    Returns the request with `seconds` as an int (it may arrive as "8")."""
    for name, value in (("the prompt", req.prompt), ("--model", req.model),
                        ("--size", req.size), ("--label", req.label), ("--image", req.image)):
        if value is not None and "\x00" in value:  # PostgreSQL text cannot hold it
            raise InvalidInput(f"{name} contains a NUL character")
    if not req.prompt.strip():
        raise InvalidInput("the prompt is empty")
    if len(req.prompt) > MAX_PROMPT_CHARS:
        raise InvalidInput(
            f"the prompt is {len(req.prompt)} characters; the limit is {MAX_PROMPT_CHARS}"
        )
    if not req.model.strip():
        raise InvalidInput("--model is empty")
    if not req.model.isprintable() or any(c.isspace() for c in req.model):
        raise InvalidInput(f"--model must be a model name (got {req.model!r})")
    seconds = parse_seconds(req.seconds)
    allowed = sizes_for(req.model)
    if allowed is None:
        if not _looks_like_size(req.size):
            raise InvalidInput(f"--size must look like WIDTHxHEIGHT (got {req.size!r})")
    elif req.size not in allowed:
        if req.size in SIZES_PRO:
            raise InvalidInput(
                f"{req.model} does not support size {req.size}; "
                f"use {' or '.join(allowed)}, or a sora-2-pro model"
            )
        raise InvalidInput(f"--size must be one of {', '.join(allowed)} (got {req.size!r})")
    return req if type(req.seconds) is int else replace(req, seconds=seconds)


def _looks_like_size(size: str) -> bool:
    # ASCII digits only: str.isdigit() also takes "²" or Arabic-Indic digits.
    return _SIZE.fullmatch(size) is not None


# --- price estimate ------------------------------------------------------------

# USD per second of output video, from the published price list. Estimates only.
_PRICES: Final[tuple[tuple[str, tuple[str, ...], float], ...]] = (
    ("sora-2-pro", ("1024x1792", "1792x1024"), 0.50),
    ("sora-2-pro", SIZES_720P, 0.30),
    ("sora-2", SIZES_720P, 0.10),
)


def estimated_cost(model: str, size: str, seconds: int) -> float | None:
    """Estimated USD for one video, or None for a model/size with no known price."""
    family = model_family(model)
    for name, sizes, per_second in _PRICES:
        if family == name and size in sizes:
            return round(per_second * seconds, 4)
    return None


# --- ids -----------------------------------------------------------------------

ID_ALPHABET: Final = "abcdefghijkmnpqrstuvwxyz23456789"  # no l, o, 0, 1: easy to read aloud
ID_LENGTH: Final = 8
MIN_PREFIX: Final = 4


def new_job_id() -> str:
    import secrets  # here: it costs `sora --help` 5 ms of imports (hashlib, random)

    # One urandom read per id, a byte per letter: 256 is a multiple of the alphabet's
    # 32 letters, so `b & 31` is uniform (secrets.choice per letter made a 10,000-line
    # batch spend 0.6 s on ids alone).
    return "".join([ID_ALPHABET[b & 31] for b in secrets.token_bytes(ID_LENGTH)])


def looks_like_remote_id(ref: str) -> bool:
    return ref.startswith("video_")


# --- the job -------------------------------------------------------------------


@dataclass(frozen=True)
class JobError:
    code: str | None
    message: str
    http_status: int | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Job:
    id: str
    prompt: str
    model: str
    size: str
    seconds: int
    status: JobStatus
    created_at: float
    updated_at: float
    remote_id: str | None = None
    remote_status: str | None = None
    progress: int = 0
    submitted_at: float | None = None
    completed_at: float | None = None
    expires_at: float | None = None
    error: JobError | None = None
    output_path: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    create_attempts: int = 0
    poll_count: int = 0
    download_attempts: int = 0
    create_started_at: float | None = None
    runner_id: str | None = None
    lease_expires_at: float | None = None
    label: str | None = None
    image: str | None = None
    remix_of: str | None = None
    retry_of: str | None = None
    thumbnail_path: str | None = None
    output_host: str | None = None  # the host whose runner saved output_path
    provider: str = "openai"
    params: Mapping[str, Any] | None = None  # the model's input fields (see VideoRequest)
    # What the provider handed back to address the job (fal's status/response/cancel
    # URLs, a result URL once known): the adapter's to read, kept as it gave it.
    remote_handle: Mapping[str, Any] | None = None

    @property
    def estimated_cost(self) -> float | None:
        """The Videos contract's price; any provider's: `catalogue.job_cost`."""
        if self.provider == "openai":
            return estimated_cost(self.model, self.size, self.seconds)
        return None

    @property
    def has_result(self) -> bool:
        """The provider finished the video and says where it is (it may have expired)."""
        if self.remote_id is None:
            return False
        if self.provider == "openai":  # its content endpoint needs only the id
            return self.status is JobStatus.COMPLETED or self.remote_status == "completed"
        return bool((self.remote_handle or {}).get("result"))

    @property
    def model_ref(self) -> str:
        """The model as the user names it: `PROVIDER:MODEL`, or the bare openai name."""
        return self.model if self.provider == "openai" else f"{self.provider}:{self.model}"

    def with_status(self, status: JobStatus, **changes: object) -> Job:
        check_transition(self.id, self.status, status)
        return replace(self, status=status, **changes)  # type: ignore[arg-type]
