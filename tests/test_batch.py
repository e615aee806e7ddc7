"""`sora submit --file` (batches), `--label` and `--image` on submit, and the label
filters of `list` and `wait`, through CliRunner. No network and no real runner."""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from clirun import one_error, sora
from seed import PATH

from sora_cli.domain.jobs import JobStatus, VideoRequest
from sora_cli.store.repository import Store

pytestmark = pytest.mark.usefixtures("home", "work")


def jobs_in(home: Path) -> list[Any]:
    """Every recorded job, oldest first."""
    if not (home / "sora.db").exists():
        return []
    with Store.open(home / "sora.db") as st:
        return st.list_jobs(limit=None)[::-1]


def complete(home: Path, job_id: str) -> None:
    saved = home / "videos" / f"{job_id}.mp4"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_bytes(b"\x00\x00\x00\x18ftypmp42" + job_id.encode())
    with Store.open(home / "sora.db") as st:
        for step in PATH[1:]:
            extra: dict[str, Any] = {}
            if step is JobStatus.RUNNING:
                extra = {"remote_id": f"video_{job_id}", "remote_status": "in_progress"}
            if step is JobStatus.COMPLETED:
                extra = {"output_path": str(saved), "completed_at": time.time()}
            st.transition(job_id, step, **extra)


def png(width: int, height: int) -> bytes:
    """A real (black) PNG of that size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = (b"\x00" + b"\x00" * width * 3) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                               0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# --- batches ------------------------------------------------------------------------------


def test_a_file_of_prompts_records_every_line_in_order(home: Path, kicks: list[Path]) -> None:
    Path("prompts.txt").write_text("# clips for the launch\na corgi surfing\n\n"
                                   "  a red fox in snow  \r\n# done?\na paper boat\n")
    r = sora("submit", "--file", "prompts.txt", "--seconds", "8", "--label", "launch")
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    ids = r.stdout.split()
    jobs = jobs_in(home)
    assert [j.id for j in jobs] == ids  # one id per line, in input order
    assert [j.prompt for j in jobs] == ["a corgi surfing", "a red fox in snow", "a paper boat"]
    assert {(j.seconds, j.label, j.model, j.status) for j in jobs} == {
        (8, "launch", "sora-2", JobStatus.QUEUED)}
    assert kicks == [home]  # one runner start for the whole batch


def test_json_lines_set_fields_per_line_over_the_options(home: Path) -> None:
    lines = [
        {"prompt": "a storm at sea", "model": "sora-2-pro", "size": "1792x1024",
         "seconds": 12, "label": "pro"},
        {"prompt": "a quiet library", "seconds": "8"},
        {"prompt": "with nulls", "label": None, "image": None},
    ]
    text = "\n".join(json.dumps(x) for x in lines) + "\nplain prompt line\n"
    r = sora("submit", "--file", "-", "--label", "batch-7", input=text)
    assert r.exit_code == 0, r.stderr
    jobs = jobs_in(home)
    assert [j.id for j in jobs] == r.stdout.split()
    assert [(j.model, j.size, j.seconds, j.label) for j in jobs] == [
        ("sora-2-pro", "1792x1024", 12, "pro"),
        ("sora-2", "720x1280", 8, "batch-7"),
        ("sora-2", "720x1280", 4, "batch-7"),
        ("sora-2", "720x1280", 4, "batch-7"),
    ]


def test_batch_json_output_is_json_lines_of_jobs(home: Path) -> None:
    r = sora("submit", "--file", "-", "--json", input="one\ntwo\n")
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [d["prompt"] for d in rows] == ["one", "two"]
    assert all(d["status"] == "queued" and d["estimated_cost_usd"] == 0.4 for d in rows)
    assert sora("submit", "--file", "-", "-q", input="three\n").stdout.count("\n") == 1


BAD_LINES = {
    "seconds": ("line 3: --seconds must be one of 4, 8, 12", '{"prompt": "x", "seconds": 5}'),
    "json": ("line 3: not valid JSON", '{"prompt": "x",'),
    "unknown field": ("line 3: unknown field 'promt'", '{"promt": "x"}'),
    "no prompt": ("line 3: a JSON line needs a \"prompt\"", '{"seconds": 4}'),
    "empty prompt": ("line 3: the prompt is empty", '{"prompt": "  "}'),
    "size": ("line 3: sora-2 does not support size 1792x1024", '{"prompt": "x", "size": '
             '"1792x1024"}'),
    "type": ("line 3: 'label' must be a string", '{"prompt": "x", "label": 7}'),
    "bool seconds": ("line 3: \"seconds\" must be a whole number", '{"prompt": "x", "seconds": '
                     'true}'),
    "label": ("line 3: --label must be one line", '{"prompt": "x", "label": "a\\nb"}'),
    "not object": ("line 3: not valid JSON", "{not json at all}"),
}


@pytest.mark.parametrize("expected, bad", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_one_bad_line_in_the_middle_fails_the_whole_batch(home: Path, kicks: list[Path],
                                                          expected: str, bad: str) -> None:
    Path("batch.jsonl").write_text(f"a good one\n\n{bad}\nanother good one\n")
    line = one_error(sora("submit", "--file", "batch.jsonl"), 2)
    assert f"batch.jsonl {expected}" in line
    assert jobs_in(home) == [] and kicks == []


def test_bad_batch_is_reported_before_a_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    assert "stdin line 2" in one_error(sora("submit", "-f", "-", input="ok\n{\n"), 2)
    assert "OPENAI_API_KEY" in one_error(sora("submit", "-f", "-", input="ok\n"), 4)


@pytest.mark.parametrize("args, text, expected", [
    (["submit", "--file", "missing.txt"], None, "missing.txt: no such file"),
    (["submit", "--file", "-"], "# only a comment\n\n", "stdin has no prompts"),
    (["submit", "a prompt", "--file", "-"], "x\n", "PROMPT or --file"),
    (["submit"], None, "PROMPT or --file"),
    (["submit", "--file", "-", "--label", ""], "x\n", "--label"),
    (["submit", "x", "--label", "tab\there"], None, "--label"),
    (["submit", "x", "--output", "a.mp4"], None, "--output goes with --download"),
])
def test_batch_usage_errors_exit_2(home: Path, args: list[str], text: str | None,
                                   expected: str) -> None:
    assert expected in one_error(sora(*args, input=text), 2)
    assert jobs_in(home) == []


def test_a_file_that_is_not_utf8_exits_2() -> None:
    Path("latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    assert "not UTF-8" in one_error(sora("submit", "--file", "latin1.txt"), 2)


def test_ten_thousand_lines_are_recorded_in_seconds(home: Path) -> None:
    Path("many.txt").write_text("".join(f"a lighthouse at dawn, take {n}\n"
                                        for n in range(10_000)))
    started = time.monotonic()
    r = sora("submit", "--file", "many.txt", "--label", "big")
    took = time.monotonic() - started
    assert r.exit_code == 0, r.stderr
    ids = r.stdout.split()
    assert len(ids) == len(set(ids)) == 10_000
    with Store.open(home / "sora.db") as st:
        oldest_first = [j.id for j in st.list_jobs(label="big", limit=None)][::-1]
    assert oldest_first == ids
    assert took < 15, f"10,000 lines took {took:.1f} s"  # about 1 s on a small machine


def test_a_budget_check_that_fails_inside_the_transaction_records_nothing(home: Path) -> None:
    with Store.open(home / "sora.db") as st:
        def refuse(store: Store) -> None:
            assert store._conn.in_transaction  # the write lock is held while checking
            raise RuntimeError("over budget")

        with pytest.raises(RuntimeError):
            st.add_jobs([VideoRequest("a"), VideoRequest("b")], check=refuse)
        assert st.list_jobs(limit=None) == []
        assert st._conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0


# --- labels -------------------------------------------------------------------------------


def test_list_filters_by_label_and_shows_a_label_column_only_when_needed(home: Path) -> None:
    plain = sora("submit", "-q", "no label").stdout.strip()
    r = sora("list")
    assert "LABEL" not in r.stdout.splitlines()[0]
    a, b = sora("submit", "-q", "-f", "-", "--label", "batch-7", input="a\nb\n").stdout.split()
    other = sora("submit", "-q", "c", "--label", "batch-8").stdout.strip()
    assert sora("list", "-q", "--label", "batch-7").stdout.split() == [b, a]
    assert sora("list", "-q", "--label", "batch-8").stdout.split() == [other]
    rows = [json.loads(x) for x in sora("list", "--json", "--label", "batch-7").stdout.split("\n")
            if x]
    assert {d["label"] for d in rows} == {"batch-7"}
    lines = sora("list").stdout.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "PROGRESS", "MODEL", "SIZE", "SECS", "EST.COST",
                                "CREATED", "LABEL", "PROMPT"]
    by_id = {x.split()[0]: x for x in lines[1:]}
    at = lines[0].index("LABEL")
    assert by_id[a][at:].startswith("batch-7") and by_id[plain][at:].startswith("-")
    r = sora("list", "--label", "nobody")
    assert (r.exit_code, r.stdout) == (0, "")


def test_status_shows_the_label(home: Path) -> None:
    job = sora("submit", "-q", "x", "--label", "batch-7").stdout.strip()
    assert any(line.split() == ["label:", "batch-7"] for line in
               sora("status", job).stdout.splitlines())
    assert json.loads(sora("status", job, "--json").stdout)["label"] == "batch-7"


def test_wait_label_download_saves_the_whole_batch_in_input_order(home: Path) -> None:
    ids = sora("submit", "-f", "-", "--label", "batch-7", input="a\nb\nc\n").stdout.split()
    sora("submit", "-q", "not in the batch", "--label", "other")
    for job_id in ids:
        complete(home, job_id)
    r = sora("wait", "--label", "batch-7", "--download", "-o", "out/")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split() == [f"out/{i}.mp4" for i in ids]
    assert sorted(p.name for p in Path("out").iterdir()) == sorted(f"{i}.mp4" for i in ids)
    r = sora("wait", "--label", "batch-7", "--json")
    assert [json.loads(x)["id"] for x in r.stdout.splitlines()] == ids
    assert sora("wait", "--label", "batch-7", "-q").exit_code == 0


def test_wait_for_an_unknown_label_exits_3(home: Path) -> None:
    assert "no jobs with label 'nope'" in one_error(sora("wait", "--label", "nope"), 3)
    assert "--label" in one_error(sora("wait"), 2)


# --- images (the image logic itself is tested in test_images.py) ---------------------------


def test_image_lines_keep_a_checked_copy(home: Path) -> None:
    Path("portrait.png").write_bytes(png(720, 1280))
    Path("wide.png").write_bytes(png(1280, 720))
    text = ('{"prompt": "a", "image": "portrait.png"}\n'
            '{"prompt": "b", "image": "wide.png", "size": "1280x720"}\nno image here\n')
    r = sora("submit", "--file", "-", input=text)
    assert r.exit_code == 0, r.stderr
    a, b, c = jobs_in(home)
    assert a.image and Path(a.image).parent == home / "inputs"
    assert Path(a.image).read_bytes() == png(720, 1280)
    assert b.image and Path(b.image).read_bytes() == png(1280, 720)
    assert c.image is None


def test_a_bad_image_line_fails_the_batch_naming_the_line(home: Path) -> None:
    Path("wide.png").write_bytes(png(1280, 720))
    Path("notes.png").write_text("not an image")
    text = 'fine\n{"prompt": "a", "image": "wide.png"}\n'
    assert "stdin line 2: image wide.png is 1280x720" in one_error(
        sora("submit", "-f", "-", input=text), 2)
    text = 'fine\nalso fine\n{"prompt": "a", "image": "notes.png"}\n'
    assert "stdin line 3: " in one_error(sora("submit", "-f", "-", input=text), 2)
    assert jobs_in(home) == []


def test_submit_image_and_fit_options(home: Path) -> None:
    Path("wide.png").write_bytes(png(1280, 720))
    job = sora("submit", "-q", "x", "--image", "wide.png", "--size", "1280x720").stdout.strip()
    assert Path(jobs_in(home)[0].image).read_bytes() == png(1280, 720)
    assert job == jobs_in(home)[0].id
    assert "1280x720" in one_error(sora("submit", "x", "--image", "wide.png"), 2)
    assert "--fit goes with --image" in one_error(sora("submit", "x", "--fit"), 2)
    url = "https://example.com/cat.png"
    sora("submit", "-q", "y", "--image", url)
    assert jobs_in(home)[-1].image == url
    pytest.importorskip("PIL", reason="--fit needs Pillow")
    r = sora("submit", "-q", "z", "--image", "wide.png", "--fit")  # 1280x720 -> 720x1280
    assert r.exit_code == 0, r.stderr
    assert Path(jobs_in(home)[-1].image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dry_run_checks_images_without_keeping_them(home: Path) -> None:
    Path("portrait.png").write_bytes(png(720, 1280))
    r = sora("submit", "--dry-run", "--json", "x", "--image", "portrait.png")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["image"] == "portrait.png"
    assert not (home / "inputs").exists() and jobs_in(home) == []
    Path("wide.png").write_bytes(png(1280, 720))
    one_error(sora("submit", "--dry-run", "x", "--image", "wide.png"), 2)
