"""Faults the fake Videos API server injects: what a fault is, and how one is chosen.

Faults are either scheduled (``FakeServer.add_faults`` or ``POST /_fake/faults``),
consumed in order, or random (``error_rate`` with ``seed``, or ``fault_mix`` with a
probability per kind). The actions are described in `sora_cli.fake.server`.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
from dataclasses import dataclass, replace
from typing import Final, Protocol

from sora_cli.fake.errors import ApiFailure


class PlanOptions(Protocol):
    """The options a FaultPlan reads (FakeOptions has them)."""

    seed: int | None
    error_rate: float
    fault_mix: dict[str, float] | None

# Route names are shared by the families: a fal submit and a Replicate create are
# "create", their status reads "retrieve", the fal platform list "list", the CDN "content"
# (and GCS), Google's OAuth token endpoint "token".
ROUTES: Final = frozenset({"create", "retrieve", "list", "content", "delete", "remix", "cancel",
                           "token", "*"})
ACTIONS: Final = frozenset(
    {"error", "drop", "create_then_error", "create_then_drop", "create_then_stall", "truncate",
     "stall_then_create", "bad_id", "slow", "huge",
     # hostile servers (see sora_cli.fake.hostile)
     "body", "create_then_body", "patch", "headers", "drip", "gzip"}
)
CREATE_ONLY: Final = frozenset(
    {"create_then_error", "create_then_drop", "create_then_stall", "stall_then_create", "bad_id",
     "create_then_body"}
)
VIDEO_ROUTES: Final = frozenset({"create", "retrieve", "remix"})  # answers that are a video
MIX_KINDS: Final = frozenset({"429", "500", "502", "503", "drop", "truncate"})
HUGE_DEFAULT: Final = 64 * 1024 * 1024
DEFAULT_STALL_MS: Final = 10_000


@dataclass(frozen=True)
class Fault:
    action: str
    route: str = "*"
    times: int = 1
    status: int = 500
    retry_after_ms: int | None = None
    prompt: str | None = None
    delay_ms: int | None = None
    text: str | None = None
    size: int | None = None
    fields: dict[str, object] | None = None  # patch: merged into the video answer
    headers: dict[str, str] | None = None  # headers: added to (or replacing) the answer's
    content_type: str | None = None  # body: the Content-Type of `text`

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}")
        if self.route not in ROUTES:
            raise ValueError(f"unknown fault route {self.route!r}")
        numbers = (self.times, self.status, self.retry_after_ms or 0, self.delay_ms or 0,
                   self.size or 0)
        if not all(isinstance(number, int) for number in numbers):
            raise ValueError("fault times, status, retry_after_ms, delay_ms and size "
                             "must be integers")
        if self.times < 1 or not 100 <= self.status <= 599 or min(numbers[2:]) < 0:
            raise ValueError("fault times must be >= 1 and status an HTTP status")
        if self.text is not None and not isinstance(self.text, str):
            raise ValueError("fault text must be a string")
        if self.fields is not None and not isinstance(self.fields, dict):
            raise ValueError("fault fields must be a JSON object")
        if self.headers is not None and not (
                isinstance(self.headers, dict)
                and all(isinstance(v, str) for v in self.headers.values())):
            raise ValueError("fault headers must be an object of strings")

    def applies_to(self, route: str, prompt: str | None) -> bool:
        if self.route not in ("*", route):
            return False
        if self.action in CREATE_ONLY and route not in ("create", "remix"):
            return False
        if self.action == "truncate" and route != "content":
            return False
        if self.action == "huge" and route == "content":
            return False
        if self.action == "patch" and route not in VIDEO_ROUTES:
            return False
        return self.prompt is None or (route in ("create", "remix") and prompt == self.prompt)


class Dropped(Exception):
    """Close the connection without (the rest of) an answer."""


class FaultPlan:
    """The faults still to inject, and the seeded draws of random ones. It shares its
    owner's lock, so that a snapshot of the owner's state sees them consistently."""

    def __init__(self, options: PlanOptions, lock: threading.Lock) -> None:
        self.options = options
        self._lock = lock
        self._faults: list[Fault] = []  # pending, with the times left
        self._random = random.Random(options.seed)

    def pending(self) -> int:
        """How many scheduled faults are left; the caller holds the shared lock."""
        return len(self._faults)

    def add(self, faults: tuple[Fault, ...]) -> None:
        with self._lock:
            self._faults.extend(faults)

    def take(self, route: str, prompt: str | None) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.applies_to(route, prompt):
                    if fault.times > 1:
                        self._faults[index] = replace(fault, times=fault.times - 1)
                    else:
                        del self._faults[index]
                    return fault
        return None

    def _mixed_fault(self, route: str, mix: dict[str, float]) -> Fault | None:
        with self._lock:
            draw = self._random.random()
            delay_ms = self._random.randint(100, 500)
        kind = None
        for name, probability in mix.items():
            if draw < probability:
                kind = name
                break
            draw -= probability
        if kind is None or (kind == "truncate" and route != "content"):
            return None
        if kind in ("drop", "truncate"):
            return Fault(kind, route)
        hint = delay_ms if kind == "429" else None
        return Fault("error", route, status=int(kind), retry_after_ms=hint)

    def random_fault(self, route: str) -> Fault | None:
        if self.options.fault_mix:
            return self._mixed_fault(route, self.options.fault_mix)
        if self.options.error_rate <= 0:
            return None
        kinds = ["429", "500", "503", "drop"] + (["truncate"] if route == "content" else [])
        with self._lock:
            if self._random.random() >= self.options.error_rate:
                return None
            kind = self._random.choice(kinds)
            delay_ms = self._random.randint(100, 500)
        if kind in ("drop", "truncate"):
            return Fault(kind, route)
        hint = delay_ms if kind == "429" else None  # 5xx without hints: clients back off alone
        return Fault("error", route, status=int(kind), retry_after_ms=hint)


def faults_from_json(body: bytes) -> list[Fault]:
    try:
        items = json.loads(body)["faults"]
        faults = [Fault(**item) for item in items]
    except (ValueError, KeyError, TypeError) as error:
        raise ApiFailure(400, f"Invalid faults: {error}") from None
    return faults


def fault_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for item in text.split(","):
        kind, _, value = item.partition("=")
        try:
            probability = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad fault mix item {item!r}") from None
        if kind.strip() not in MIX_KINDS or not 0 <= probability <= 1:
            raise argparse.ArgumentTypeError(f"bad fault mix item {item!r}")
        mix[kind.strip()] = probability
    if sum(mix.values()) > 1:
        raise argparse.ArgumentTypeError("the fault mix adds up to more than 1")
    return mix
