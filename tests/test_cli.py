"""Every command through CliRunner: exit codes, stdout/stderr discipline, --json shapes.

No network and no real runner: runner starts are recorded (tests/clirun.py), and job
progress is written straight into the store.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from clirun import KEY, one_error, sora
from seed import add, advance, fail, get, recorded

from sora_cli.domain.jobs import JobStatus
from sora_cli.runner.spawn import hold_runner_lock
from sora_cli.store.repository import Store

pytestmark = pytest.mark.usefixtures("home")

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
JOB_ID = re.compile(r"^[a-z2-9]{8}$")


# --- submit ---------------------------------------------------------------------------


def test_submit_prints_only_the_id_and_starts_a_runner(home: Path, kicks: list[Path]) -> None:
    r = sora("submit", "a corgi surfing at sunset", "--seconds", "8", "--size", "1280x720")
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    job_id = r.stdout.strip()
    assert r.stdout == job_id + "\n" and JOB_ID.match(job_id)
    job = get(home, job_id)
    assert (job.status, job.prompt, job.seconds, job.size) == (
        JobStatus.QUEUED, "a corgi surfing at sunset", 8, "1280x720")
    assert kicks == [home]


def test_submit_json_has_the_documented_fields(home: Path) -> None:
    r = sora("submit", "--json", "a red fox", "--seconds", "12", "--model", "sora-2-pro",
             "--size", "1792x1024")
    assert r.exit_code == 0, r.stderr
    (line,) = r.stdout.splitlines()
    d = json.loads(line)
    assert {"id", "remote_id", "status", "progress", "prompt", "model", "size", "seconds",
            "created_at", "submitted_at", "completed_at", "updated_at", "error",
            "output_path", "bytes", "sha256"} <= d.keys()
    assert d["seconds"] == 12 and type(d["seconds"]) is int
    assert (d["status"], d["progress"], d["prompt"], d["model"], d["size"]) == (
        "queued", 0, "a red fox", "sora-2-pro", "1792x1024")
    assert ISO_Z.match(d["created_at"]) and ISO_Z.match(d["updated_at"])
    assert d["remote_id"] is d["error"] is d["output_path"] is d["bytes"] is d["sha256"] is None
    assert get(home, d["id"]) is not None


def test_json_of_failed_and_completed_jobs(home: Path) -> None:
    bad, good = add(home, "a"), add(home, "b")
    fail(home, bad, "blocked by moderation", http_status=400, request_id="req_123")
    advance(home, good, JobStatus.COMPLETED, output_path="/v/x.mp4", bytes=42, sha256="ab" * 32,
            completed_at=1_700_000_000.0)
    r = sora("status", bad, good, "--json")
    assert r.exit_code == 0, r.stderr
    d_bad, d_good = (json.loads(x) for x in r.stdout.splitlines())
    assert d_bad["error"] == {"code": "moderation_blocked", "message": "blocked by moderation",
                              "http_status": 400, "request_id": "req_123"}
    assert d_bad["status"] == "failed"
    assert d_good["error"] is None and d_good["status"] == "completed"
    assert (d_good["output_path"], d_good["bytes"], d_good["sha256"]) == ("/v/x.mp4", 42,
                                                                          "ab" * 32)
    assert d_good["completed_at"] == "2023-11-14T22:13:20Z"
    assert d_good["remote_id"] == f"video_{good}"


def test_submit_quiet_prints_the_id(home: Path) -> None:
    r = sora("submit", "-q", "a fox")
    assert r.exit_code == 0 and JOB_ID.match(r.stdout.strip()) and r.stderr == ""


def test_submit_reads_the_prompt_from_stdin(home: Path) -> None:
    r = sora("submit", "-", input="a fox\non the moon\n")
    assert r.exit_code == 0, r.stderr
    assert get(home, r.stdout.strip()).prompt == "a fox\non the moon"


BAD_SUBMITS = {
    "empty": ["submit", ""],
    "blank": ["submit", "  \n\t "],
    "too long": ["submit", "x" * 32001],
    "seconds 5": ["submit", "a fox", "--seconds", "5"],
    "seconds text": ["submit", "a fox", "--seconds", "four"],
    "size 640x480": ["submit", "a fox", "--size", "640x480"],
    "sora-2 1792x1024": ["submit", "a fox", "--model", "sora-2", "--size", "1792x1024"],
    "unknown option": ["submit", "a fox", "--colour", "red"],
    "no prompt": ["submit"],
    "blank stdin": ["submit", "-"],
}


@pytest.mark.parametrize("args", BAD_SUBMITS.values(), ids=BAD_SUBMITS.keys())
def test_bad_input_exits_2_and_records_nothing(home: Path, kicks: list[Path],
                                               args: list[str]) -> None:
    one_error(sora(*args, input="\n"), 2)
    assert recorded(home) == 0
    assert kicks == []


@pytest.mark.parametrize("args", [BAD_SUBMITS["empty"], BAD_SUBMITS["seconds 5"],
                                  BAD_SUBMITS["sora-2 1792x1024"]])
def test_bad_input_is_reported_before_a_missing_key(monkeypatch: pytest.MonkeyPatch,
                                                    args: list[str]) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    one_error(sora(*args), 2)


def test_submit_without_a_key_exits_4_and_records_nothing(home: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    assert "OPENAI_API_KEY" in one_error(sora("submit", "a fox"), 4)
    assert recorded(home) == 0


def test_sizes_allowed_by_model(home: Path) -> None:
    assert sora("submit", "a", "--model", "sora-2-pro", "--size", "1024x1792").exit_code == 0
    assert sora("submit", "a", "--model", "sora-2-2025-10-06", "--size", "720x1280").exit_code == 0
    one_error(sora("submit", "a", "--model", "sora-2-2025-10-06", "--size", "1024x1792"), 2)
    assert sora("submit", "a", "--model", "my-deploy", "--size", "640x480").exit_code == 0


def test_data_dir_below_a_regular_file_exits_1(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a dir")
    monkeypatch.setenv("SORA_HOME", str(blocker / "home"))
    assert "a-file" in one_error(sora("submit", "a fox"), 1)
    one_error(sora("list"), 1)
    assert blocker.read_text() == "not a dir"


def test_a_database_that_is_not_sqlite_exits_1_and_is_left_alone(home: Path) -> None:
    db = home / "sora.db"
    db.write_bytes(b"this is not a database\n" * 10)
    before = db.read_bytes()
    assert "not a" in one_error(sora("submit", "a fox"), 1)
    one_error(sora("list"), 1)
    one_error(sora("status", "abcd"), 1)
    assert db.read_bytes() == before


# --- status --------------------------------------------------------------------------


def test_status_by_id_prefix_remote_id_and_last(home: Path) -> None:
    first = add(home, "one", now=1000.0)
    last = add(home, "two", now=2000.0)
    advance(home, first, JobStatus.RUNNING)
    for ref in (first, first[:4], first[:6].upper(), f"video_{first}"):
        r = sora("status", ref, "--json")
        assert r.exit_code == 0, (ref, r.stderr)
        assert json.loads(r.stdout)["id"] == first
    r = sora("status", "@last", "-q")
    assert r.stdout == last + "\n"
    r = sora("status", "-", "-q", input=f"{first}\n  {last}\n")
    assert r.stdout.split() == [first, last]


def test_status_unknown_id_exits_3(home: Path) -> None:
    add(home)
    assert "zzzz9999" in one_error(sora("status", "zzzz9999"), 3)
    one_error(sora("status", f"video_{'x' * 10}"), 3)


def test_status_ambiguous_prefix_exits_3_listing_the_candidates(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(["abcd2345", "abcd6789", "wxyz2345"])
    monkeypatch.setattr("sora_cli.store.repository.new_job_id", lambda: next(ids))
    for _ in range(3):
        add(home)
    line = one_error(sora("status", "abcd"), 3)
    assert "ambiguous" in line and "abcd2345" in line and "abcd6789" in line
    assert sora("status", "abcd6", "-q").stdout == "abcd6789\n"


def test_status_of_a_failed_job_exits_0_and_strips_escapes(home: Path) -> None:
    job = add(home)
    fail(home, job, "bad \x1b[31mred\x1b[0m words\x07", code="oops\x1b]0;title\x07",
         http_status=400, request_id="req_9")
    r = sora("status", job)
    assert r.exit_code == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "bad red words" in r.stdout and "req_9" in r.stdout and "failed" in r.stdout


def test_status_starts_a_runner_only_for_unfinished_work(home: Path,
                                                         kicks: list[Path]) -> None:
    done = add(home)
    fail(home, done, "x")
    assert sora("status", done).exit_code == 0
    assert kicks == []
    add(home)
    assert sora("status", done).exit_code == 0
    assert kicks == [home]


# --- list ------------------------------------------------------------------------------


def test_list_newest_first_limits_and_filters(home: Path, kicks: list[Path]) -> None:
    ids = [add(home, f"job {n}", now=1000.0 + n) for n in range(25)]
    newest_first = ids[::-1]
    assert sora("list", "-q").stdout.split() == newest_first[:20]
    assert sora("list", "-q", "-n", "3").stdout.split() == newest_first[:3]
    assert sora("list", "-q", "--all").stdout.split() == newest_first
    assert kicks  # queued jobs and no runner: one was started
    fail(home, ids[3], "x")
    advance(home, ids[5], JobStatus.RUNNING)
    assert sora("list", "-q", "--status", "failed").stdout.split() == [ids[3]]
    both = sora("list", "-q", "--status", "failed", "--status", "RUNNING").stdout.split()
    assert both == [ids[5], ids[3]]


def test_list_json_is_json_lines(home: Path) -> None:
    a, b = add(home, "a", now=1.0), add(home, "b", now=2.0)
    r = sora("list", "--json")
    assert r.exit_code == 0
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [d["id"] for d in rows] == [b, a]
    assert all(d["status"] == "queued" and type(d["seconds"]) is int for d in rows)


def test_list_table_is_plain_and_aligned(home: Path) -> None:
    a = add(home, "a short one", now=1.0)
    b = add(home, "a long prompt " * 10, now=2.0, model="sora-2-pro", size="1792x1024")
    fail(home, a, "x")
    lines = sora("list").stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATUS", "PROGRESS"]
    assert [x.split()[0] for x in lines[1:]] == [b, a]
    assert "\x1b" not in "".join(lines)
    for column in ("STATUS", "MODEL", "SIZE", "CREATED"):
        at = lines[0].index(column)
        assert all(line[at - 2: at] == "  " and line[at] != " " for line in lines[1:])


def test_list_errors_and_empty(home: Path) -> None:
    assert "--status" in one_error(sora("list", "--status", "done"), 2)
    one_error(sora("list", "-n", "-1"), 2)
    r = sora("list")
    assert (r.exit_code, r.stdout) == (0, "")


# --- cancel ---------------------------------------------------------------------------


def test_cancel_queued_running_and_final_jobs(home: Path) -> None:
    queued, running, done = add(home), add(home), add(home)
    advance(home, running, JobStatus.RUNNING)
    advance(home, done, JobStatus.COMPLETED)
    r = sora("cancel", queued, running, done)
    assert r.exit_code == 0, r.stderr
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert "never sent" in lines[queued]
    assert "billed" in lines[running]
    assert "already completed" in lines[done]
    assert [get(home, i).status for i in (queued, running, done)] == [
        JobStatus.CANCELLED, JobStatus.CANCELLED, JobStatus.COMPLETED]
    r = sora("cancel", queued, "--json")
    assert json.loads(r.stdout)["status"] == "cancelled"
    one_error(sora("cancel", "nope9999"), 3)


# --- config, runner, completions ------------------------------------------------------


def test_config_show_masks_the_key(home: Path) -> None:
    for args in (["config", "show"], ["config", "show", "--json"]):
        r = sora(*args)
        assert r.exit_code == 0 and KEY not in r.stdout and KEY not in r.stderr
    assert "api_key = sk-...fXYZ" in sora("config", "show").stdout.splitlines()
    assert json.loads(sora("config", "show", "--json").stdout)["api_key"] == "sk-...fXYZ"


def test_config_env_beats_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = home / "config.toml"
    cfg.write_text('model = "sora-2-pro"\nsize = "1280x720"\n'
                   'base_url = "http://file.invalid/v1"\napi_key = "sk-from-file-000000"\n')
    cfg.chmod(0o600)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SORA_SIZE", "720x1280")
    d = json.loads(sora("config", "show", "--json").stdout)
    assert (d["base_url"], d["size"], d["model"]) == ("http://127.0.0.1:9/v1", "720x1280",
                                                      "sora-2-pro")
    assert d["api_key"] == "sk-...fXYZ"
    monkeypatch.delenv("OPENAI_API_KEY")
    out = sora("config", "show", "--json").stdout
    assert json.loads(out)["api_key"] == "***" and "sk-from-file" not in out  # < 20 chars


def test_runner_status_when_not_running(home: Path) -> None:
    r = sora("runner", "status", "--json")
    d = json.loads(r.stdout)
    assert {"running", "pid", "jobs_in_flight", "started_at"} <= d.keys()
    assert (d["running"], d["pid"], d["jobs_in_flight"], d["started_at"]) == (False, None, 0,
                                                                              None)
    assert sora("runner", "status").stdout == "not running\n"


def test_runner_status_of_a_live_runner(home: Path) -> None:
    info = {"pid": 4242, "runner_id": "host:4242:ab", "started_at": 1_700_000_000.0}
    with hold_runner_lock(home / "runner.lock", info) as held, Store.open(home / "sora.db") as st:
        assert held
        st.runner_beat("host:4242:ab", host="host", pid=4242, started_at=1_700_000_000.0,
                       jobs_in_flight=3)
        d = json.loads(sora("runner", "status", "--json").stdout)
    assert (d["running"], d["pid"], d["jobs_in_flight"], d["started_at"]) == (
        True, 4242, 3, "2023-11-14T22:13:20Z")


def test_runner_start_starts_one(home: Path, kicks: list[Path]) -> None:
    r = sora("runner", "start")
    assert r.exit_code == 0 and kicks == [home] and "started" in r.stderr


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o"), ("zsh", "#compdef sora"),
                                           ("fish", "--command sora")])
def test_completions(shell: str, marker: str) -> None:
    r = sora("completions", shell)
    assert r.exit_code == 0 and marker in r.stdout and "_SORA_COMPLETE" in r.stdout


def test_completions_unknown_shell_exits_2() -> None:
    assert "tcsh" in one_error(sora("completions", "tcsh"), 2)


# --- help, errors, verbosity ----------------------------------------------------------

COMMANDS = [["submit"], ["status"], ["list"], ["wait"], ["download"], ["cancel"],
            ["runner", "status"], ["runner", "start"], ["runner", "stop"], ["config", "show"],
            ["completions"], ["fake-server"], []]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "sora")
def test_help_shows_an_example(cmd: list[str]) -> None:
    r = sora(*cmd, "--help")
    assert r.exit_code == 0
    assert re.search(rf"^\s+sora {' '.join(cmd)}", r.stdout, re.M), r.stdout


def test_help_lists_submit_first_and_no_args_prints_usage() -> None:
    commands = sora("--help").stdout.split("Commands:")[1].split()
    assert commands[0] == "submit" and commands.index("wait") < commands.index("download")
    r = sora()
    assert r.exit_code == 2 and r.stdout == "" and r.stderr.startswith("Usage: sora")


def test_verbose_prints_a_traceback_only_when_asked(home: Path) -> None:
    r = sora("-v", "status", "nope9999")
    assert r.exit_code == 3 and "Traceback" in r.stderr
    assert r.stderr.splitlines()[-1].startswith("sora: no such job")
    one_error(sora("status", "nope9999"), 3)  # no traceback, and -v did not stick


def test_ctrl_c_exits_130_with_a_note(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("sora_cli.cli.jobs.resolve_all", interrupted)
    assert "interrupted" in one_error(sora("status", "abcd"), 130)


def test_version() -> None:
    r = sora("--version")
    assert r.exit_code == 0 and r.stdout.startswith("sora ")
