"""The domain: request validation, the lifecycle's legal moves, prices and ids."""

from __future__ import annotations

import itertools

import pytest

from sora_cli.domain.jobs import (
    ACTIVE_STATUSES,
    ID_ALPHABET,
    ID_LENGTH,
    MAX_PROMPT_CHARS,
    TRANSITIONS,
    Job,
    JobStatus,
    VideoRequest,
    check_transition,
    estimated_cost,
    model_family,
    new_job_id,
    parse_seconds,
    sizes_for,
    validate_request,
)
from sora_cli.errors import ExitCode, IllegalTransition, InvalidInput

S = JobStatus


def req(**kw: object) -> VideoRequest:
    return VideoRequest(**{"prompt": "a cat on a skateboard", **kw})  # type: ignore[arg-type]


def refused(r: VideoRequest) -> str:
    with pytest.raises(InvalidInput) as info:
        validate_request(r)
    assert info.value.exit_code == ExitCode.USAGE
    return str(info.value)


# --- prompt ----------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["", " ", "\t\n  \r"])
def test_empty_or_blank_prompt_is_refused(prompt: str) -> None:
    assert "empty" in refused(req(prompt=prompt))


def test_prompt_length_limit_is_inclusive() -> None:
    assert MAX_PROMPT_CHARS == 32000
    assert validate_request(req(prompt="x" * 32000)).prompt == "x" * 32000
    message = refused(req(prompt="x" * 32001))
    assert "32001" in message and "32000" in message


# --- seconds ---------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [4, 8, 12])
def test_allowed_seconds(seconds: int) -> None:
    assert validate_request(req(seconds=seconds)).seconds == seconds
    assert parse_seconds(str(seconds)) == seconds
    assert parse_seconds(f" {seconds} ") == seconds


@pytest.mark.parametrize("seconds", [5, 0, -4, 16, "abc", "", "8.0", "4s", True])
def test_other_seconds_are_refused(seconds: object) -> None:
    with pytest.raises(InvalidInput, match="--seconds must be one of 4, 8, 12"):
        parse_seconds(seconds)  # type: ignore[arg-type]
    assert "--seconds" in refused(req(seconds=seconds))


def test_validate_returns_seconds_as_int() -> None:
    checked = validate_request(req(seconds="8"))
    assert checked.seconds == 8 and type(checked.seconds) is int


# --- model and size ----------------------------------------------------------------


@pytest.mark.parametrize("size", ["720x1280", "1280x720"])
@pytest.mark.parametrize("model", ["sora-2", "sora-2-2025-10-06", "sora-2-pro",
                                   "sora-2-pro-2025-10-06"])
def test_720p_sizes_work_for_every_family(model: str, size: str) -> None:
    assert validate_request(req(model=model, size=size)).size == size


@pytest.mark.parametrize("size", ["1024x1792", "1792x1024"])
@pytest.mark.parametrize("model", ["sora-2-pro", "sora-2-pro-2025-10-06"])
def test_pro_models_take_the_large_sizes(model: str, size: str) -> None:
    assert validate_request(req(model=model, size=size)).size == size


@pytest.mark.parametrize("size", ["1024x1792", "1792x1024"])
@pytest.mark.parametrize("model", ["sora-2", "sora-2-2025-10-06"])
def test_sora2_refuses_large_sizes_and_names_pro(model: str, size: str) -> None:
    message = refused(req(model=model, size=size))
    assert "sora-2-pro" in message and size in message


@pytest.mark.parametrize("model", ["sora-2", "sora-2-pro", "sora-2-pro-2025-10-06"])
@pytest.mark.parametrize("size", ["640x480", "1920x1080", "720X1280", "720x1280 ", "big"])
def test_known_models_refuse_other_sizes(model: str, size: str) -> None:
    assert "--size must be one of" in refused(req(model=model, size=size))


def test_families() -> None:
    assert model_family("sora-2") == "sora-2"
    assert model_family("sora-2-2025-10-06") == "sora-2"
    assert model_family("sora-2-pro") == "sora-2-pro"
    assert model_family("sora-2-pro-2025-10-06") == "sora-2-pro"
    for other in ("sora-20", "sora-2x", "sora-2-mini", "sora-2-pro-max", "sora", "veo-3",
                  "sora-2-2025-10", "sora-2-pro-20251006"):
        assert model_family(other) is None, other
        assert sizes_for(other) is None


@pytest.mark.parametrize("size", ["640x480", "1x1", "3840x2160", "1792x1024"])
@pytest.mark.parametrize("model", ["veo-3", "sora-3", "sora-20", "my-model-2025"])
def test_unknown_model_passes_through_with_any_size(model: str, size: str) -> None:
    checked = validate_request(req(model=model, size=size))
    assert (checked.model, checked.size) == (model, size)


@pytest.mark.parametrize("size", [
    "", "big", "640", "640x", "x480", "640*480", "640x480x2", " 640x480", "640x480\n",
    "-640x480", "0x480", "640x0", "0640x480", "640 x 480", "\u0666\u0664\u0660x480", "6\u00b2x4",
])
def test_unknown_model_refuses_junk_sizes(size: str) -> None:
    assert "WIDTHxHEIGHT" in refused(req(model="veo-3", size=size))


@pytest.mark.parametrize("model", ["", "   ", " sora-2", "sora 2", "sora-2\n", "so\x00ra"])
def test_junk_model_names_are_refused(model: str) -> None:
    assert "--model" in refused(req(model=model))


# --- lifecycle -----------------------------------------------------------------------

ALL_MOVES = list(itertools.product(JobStatus, JobStatus))


def test_transition_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(JobStatus)
    assert TRANSITIONS[S.COMPLETED] == TRANSITIONS[S.CANCELLED] == frozenset()
    assert all(src not in dsts for src, dsts in TRANSITIONS.items())  # no self-loops
    # Every active status can be cancelled and can fail.
    for status in ACTIVE_STATUSES:
        assert {S.CANCELLED, S.FAILED} <= TRANSITIONS[status]


def test_happy_path_is_legal() -> None:
    path = [S.QUEUED, S.SUBMITTING, S.RUNNING, S.DOWNLOADING, S.COMPLETED]
    for src, dst in itertools.pairwise(path):
        check_transition("j", src, dst)


@pytest.mark.parametrize(("src", "dst"), [m for m in ALL_MOVES if m[1] in TRANSITIONS[m[0]]])
def test_legal_moves(src: JobStatus, dst: JobStatus) -> None:
    check_transition("abcd2345", src, dst)
    job = make_job(src).with_status(dst, progress=7)
    assert (job.status, job.progress) == (dst, 7)


@pytest.mark.parametrize(("src", "dst"),
                         [m for m in ALL_MOVES if m[1] not in TRANSITIONS[m[0]]])
def test_illegal_moves_raise(src: JobStatus, dst: JobStatus) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition("abcd2345", src, dst)
    assert str(info.value) == f"job abcd2345 cannot go from {src} to {dst}"
    job = make_job(src)
    with pytest.raises(IllegalTransition):
        job.with_status(dst)
    assert job.status is src  # frozen: nothing changed


def test_illegal_count_matches_table() -> None:
    legal = sum(len(v) for v in TRANSITIONS.values())
    assert legal == 21  # failed/expired -> running, expired -> completed: recoveries
    assert len(ALL_MOVES) - legal == 64 - 21


def test_active_and_final() -> None:
    assert {s for s in JobStatus if s.is_active} == {S.QUEUED, S.SUBMITTING, S.RUNNING,
                                                      S.DOWNLOADING}
    assert {s for s in JobStatus if s.is_final} == {S.COMPLETED, S.FAILED, S.CANCELLED,
                                                     S.EXPIRED}
    assert {s for s in JobStatus if s.is_unsuccessful} == {S.FAILED, S.CANCELLED, S.EXPIRED}


# --- prices ------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [4, 8, 12])
@pytest.mark.parametrize(("model", "size", "per_second"), [
    ("sora-2", "720x1280", 0.10),
    ("sora-2", "1280x720", 0.10),
    ("sora-2-2025-10-06", "1280x720", 0.10),
    ("sora-2-pro", "720x1280", 0.30),
    ("sora-2-pro", "1280x720", 0.30),
    ("sora-2-pro-2025-10-06", "720x1280", 0.30),
    ("sora-2-pro", "1024x1792", 0.50),
    ("sora-2-pro", "1792x1024", 0.50),
    ("sora-2-pro-2025-10-06", "1024x1792", 0.50),
])
def test_price_estimates(model: str, size: str, per_second: float, seconds: int) -> None:
    assert estimated_cost(model, size, seconds) == pytest.approx(per_second * seconds)
    assert make_job(S.QUEUED, model=model, size=size, seconds=seconds).estimated_cost \
        == pytest.approx(per_second * seconds)


def test_exact_prices() -> None:
    assert estimated_cost("sora-2", "720x1280", 12) == 1.2
    assert estimated_cost("sora-2-pro", "1280x720", 8) == 2.4
    assert estimated_cost("sora-2-pro", "1024x1792", 4) == 2.0


@pytest.mark.parametrize(("model", "size"), [
    ("veo-3", "720x1280"), ("sora-20", "720x1280"), ("sora-2-mini", "720x1280"),
    ("sora-2", "1792x1024"), ("sora-2-pro", "640x480"),
])
def test_no_price_for_unknown_model_or_size(model: str, size: str) -> None:
    assert estimated_cost(model, size, 4) is None


# --- ids ------------------------------------------------------------------------------------


def test_id_alphabet_is_unambiguous() -> None:
    assert len(set(ID_ALPHABET)) == len(ID_ALPHABET) == 32
    assert ID_ALPHABET.lower() == ID_ALPHABET
    assert not set(ID_ALPHABET) & set("lo01")
    assert set(ID_ALPHABET) <= set("abcdefghijklmnopqrstuvwxyz0123456789")


def test_new_ids_use_the_alphabet_and_length() -> None:
    ids = [new_job_id() for _ in range(2000)]
    assert ID_LENGTH >= 8
    assert all(len(i) == ID_LENGTH and set(i) <= set(ID_ALPHABET) for i in ids)
    assert len(set(ids)) == len(ids)
    used = set("".join(ids))
    assert used == set(ID_ALPHABET)  # 16000 draws: every letter appears


# --- helpers ---------------------------------------------------------------------------------


def make_job(status: JobStatus, **kw: object) -> Job:
    fields: dict[str, object] = dict(id="abcd2345", prompt="p", model="sora-2",
                                     size="720x1280", seconds=4, status=status,
                                     created_at=1.0, updated_at=1.0)
    fields.update(kw)
    return Job(**fields)  # type: ignore[arg-type]
