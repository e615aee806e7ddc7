"""The retry rules, as the official openai SDK applies them."""

from __future__ import annotations

import email.utils
import random

import pytest

from sora_cli.providers.retry import (
    MAX_RETRIES_DEFAULT,
    backoff_delay,
    hint_too_long,
    hinted_delay,
    retry_after_seconds,
    retry_delay,
    should_retry_status,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(status: int) -> None:
    assert should_retry_status(status, None)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_permanent_statuses(status: int) -> None:
    assert not should_retry_status(status, None)


def test_should_retry_header_overrides_both_ways() -> None:
    assert should_retry_status(400, "true")
    assert should_retry_status(404, " TRUE ")
    assert not should_retry_status(500, "false")
    assert not should_retry_status(429, "false")
    assert should_retry_status(503, "maybe")  # junk falls back to the status rule
    assert not should_retry_status(400, "")


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert hinted_delay({"retry-after-ms": "1500", "retry-after": "30"}) == 1.5


def test_retry_after_seconds_and_floats() -> None:
    assert hinted_delay({"retry-after": "7"}) == 7.0
    assert hinted_delay({"retry-after": "0.25"}) == 0.25
    assert hinted_delay({"Retry-After": "3"}) == 3.0  # plain dicts: any case


def test_retry_after_http_date() -> None:
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert hinted_delay({"retry-after": date}, now=NOW) == pytest.approx(30.0)
    assert retry_after_seconds({"retry-after": date}, now=NOW + 40) == pytest.approx(-10.0)
    assert hinted_delay({"retry-after": date}, now=NOW + 40) is None  # in the past


def test_unusable_hints_are_none() -> None:
    assert hinted_delay({}) is None
    assert hinted_delay({"retry-after": "soon"}) is None
    assert hinted_delay({"retry-after-ms": "nan"}) is None
    assert hinted_delay({"retry-after": "-5"}) is None
    assert hinted_delay({"retry-after": "inf"}) is None


def test_120_second_bound() -> None:
    assert hinted_delay({"retry-after": "120"}) == 120.0
    assert not hint_too_long({"retry-after": "120"})
    assert hinted_delay({"retry-after": "121"}) is None
    assert hint_too_long({"retry-after": "121"})
    assert hint_too_long({"retry-after-ms": "120001"})
    date = email.utils.formatdate(NOW + 600, usegmt=True)
    assert hint_too_long({"retry-after": date}, now=NOW)
    assert not hint_too_long({})
    assert hint_too_long({"retry-after": "1e999"})  # overflow: excessive, not malformed
    assert not hint_too_long({"retry-after": "inf"})  # a literal infinity is ignored


def test_zero_hint() -> None:
    assert hinted_delay({"retry-after": "0"}) == 0.0
    # ...but a zero hint does not mean hammering: the backoff applies instead (as the SDK)
    assert retry_delay({"retry-after": "0"}, 0, random.Random(1)) > 0.37


def test_backoff_grows_and_caps() -> None:
    top = _FixedRandom(0.0)  # jitter factor 1
    assert [backoff_delay(n, top) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff_delay(10_000, top) == 8.0


def test_jitter_bounds() -> None:
    rng = random.Random(7)
    for n in range(8):
        base = min(0.5 * 2**n, 8)
        for _ in range(200):
            delay = backoff_delay(n, rng)
            assert 0.75 * base < delay <= base
    assert backoff_delay(0, _FixedRandom(0.5)) == 0.4375  # factor 1 - 0.25 * draw
    assert backoff_delay(0, _FixedRandom(0.999999)) > 0.375
    assert len({backoff_delay(3, rng) for _ in range(20)}) == 20


def test_retry_delay_prefers_a_positive_hint() -> None:
    assert retry_delay({"retry-after-ms": "250"}, 3) == 0.25
    assert retry_delay(None, 2, _FixedRandom(0.0)) == 2.0
    assert retry_delay({"retry-after": "500"}, 0, _FixedRandom(0.0)) == 0.5


def test_default_retry_budget() -> None:
    assert MAX_RETRIES_DEFAULT == 5


class _FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value
