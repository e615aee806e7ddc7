"""Output shapes: terminal-safe text, the JSON field set, tables, colour rules."""

from __future__ import annotations

import io

import pytest

from sora_cli.cli.render import detail, failure_line, iso, job_dict, table, use_colour
from sora_cli.domain.jobs import Job, JobError, JobStatus
from sora_cli.domain.text import clean

JSON_FIELDS = {
    "id", "remote_id", "status", "remote_status", "progress", "prompt", "model", "size",
    "seconds", "estimated_cost_usd", "created_at", "submitted_at", "completed_at",
    "updated_at", "expires_at", "error", "output_path", "bytes", "sha256",
    "create_attempts", "poll_count", "download_attempts", "label", "image", "remix_of",
    "retry_of", "thumbnail_path", "output_host", "provider", "params",
}


def job(job_id: str = "abcd2345", status: JobStatus = JobStatus.QUEUED, **kw: object) -> Job:
    fields: dict[str, object] = {"prompt": "a fox", "model": "sora-2", "size": "720x1280",
                                 "seconds": 4, "created_at": 1_700_000_000.0,
                                 "updated_at": 1_700_000_001.0, **kw}
    return Job(id=job_id, status=status, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw, safe", [
    ("bad \x1b[31mred\x1b[0m words", "bad red words"),
    ("\x1b[2J\x1b[1;1Hcleared", "cleared"),
    ("title\x1b]0;pwned\x07 here", "title here"),
    ("link \x1b]8;;http://x\x1b\\text\x1b]8;;\x1b\\", "link text"),
    ("c1 \x9b31mcsi", "c1 csi"),
    ("bell\x07 nul\x00 cr\r del\x7f", "bell nul cr del"),
    ("keeps\ttabs, newlines\nand ünïcödé …", "keeps\ttabs, newlines\nand ünïcödé …"),
])
def test_clean_strips_escapes_and_controls(raw: str, safe: str) -> None:
    assert clean(raw) == safe


def test_iso_is_utc_with_z() -> None:
    assert iso(0) == "1970-01-01T00:00:00Z"
    assert iso(1_700_000_000.9) == "2023-11-14T22:13:20Z"
    assert iso(None) is None


def test_job_dict_field_set_and_types() -> None:
    failed = job_dict(job(status=JobStatus.FAILED, seconds=8,
                          error=JobError("bad_request", "nope", 400, "req_1")))
    assert set(failed) == JSON_FIELDS
    assert failed["error"] == {"code": "bad_request", "message": "nope", "http_status": 400,
                               "request_id": "req_1"}
    assert failed["seconds"] == 8 and failed["status"] == "failed"
    assert failed["created_at"] == "2023-11-14T22:13:20Z" and failed["completed_at"] is None
    assert job_dict(job())["error"] is None


def test_table_aligns_columns_without_colour() -> None:
    jobs = [job("aaaa2345", JobStatus.DOWNLOADING, progress=100, model="sora-2-pro",
                size="1792x1024"),
            job("bbbb2345", JobStatus.QUEUED, prompt="a very long prompt " * 10)]
    text = table(jobs, colour=False)
    assert "\x1b" not in text
    lines = text.splitlines()
    assert [line.split()[0] for line in lines] == ["ID", "aaaa2345", "bbbb2345"]
    for column in ("STATUS", "PROGRESS", "MODEL", "SIZE", "SECS", "EST.COST", "PROMPT"):
        at = lines[0].index(column)
        assert all(line[at - 2: at] == "  " and line[at] != " " for line in lines[1:]), column
    assert lines[2].endswith("…") and len(lines[2]) < 200


def test_table_with_colour_only_adds_escapes() -> None:
    jobs = [job("aaaa2345", JobStatus.FAILED), job("bbbb2345", JobStatus.COMPLETED)]
    coloured = table(jobs, colour=True)
    assert "\x1b[31mfailed\x1b[0m" in coloured
    assert clean(coloured) == table(jobs, colour=False)


def test_table_cleans_every_cell() -> None:
    text = table([job(model="evil\x1b[2Jmodel", prompt="a\x1b]0;t\x07b\nc")], colour=False)
    assert "\x1b" not in text and "\x07" not in text and "evilmodel" in text


def test_detail_and_failure_line_are_terminal_safe() -> None:
    bad = job(status=JobStatus.FAILED,
              error=JobError("x\x1b[1m", "line one\nline\x1b[31m two", 500, "req_7"))
    text = detail(bad, colour=False)
    assert "\x1b" not in text and "line one line two" in text and "req_7" in text
    line = failure_line(bad)
    assert "\n" not in line and "\x1b" not in line and "abcd2345" in line
    assert failure_line(job(status=JobStatus.CANCELLED)) == "job abcd2345 cancelled"


class Tty(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("env, tty, expected", [
    ({}, True, True),
    ({}, False, False),
    ({"NO_COLOR": "1"}, True, False),
    ({"NO_COLOR": ""}, True, True),  # the NO_COLOR convention: only a non-empty value counts
    ({"TERM": "dumb"}, True, False),
    ({"TERM": "xterm-256color"}, True, True),
])
def test_use_colour(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tty: bool,
                    expected: bool) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert use_colour(Tty(tty)) is expected


def test_use_colour_on_a_closed_stream() -> None:
    stream = io.StringIO()
    stream.close()
    assert use_colour(stream) is False
