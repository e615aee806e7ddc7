"""The benchmark suite keeps working (a quick run; speed is never asserted here), and
the two design rules it measures hold: the hot commands import no heavy library, and
the hot queries read the store through indexes."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
HEAVY = ("httpx", "httpcore", "sqlalchemy", "sqlmodel", "pydantic", "rich")


@pytest.fixture
def bench_modules() -> Iterator[None]:
    sys.path.insert(0, str(BENCH))
    try:
        yield
    finally:
        sys.path.remove(str(BENCH))


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SORA_", "OPENAI_"))}
    env.update(SORA_HOME=str(home), OPENAI_API_KEY="sk-test", NO_COLOR="1",
               OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    return env


@pytest.mark.e2e
def test_quick_bench_runs_and_writes_a_table(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={k: v for k, v in os.environ.items()
                               if not k.startswith(("SORA_", "OPENAI_"))})
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert "| target | measured | limit |" in text
    for title in ("Start-up", "Submission", "Store size", "Runner at scale", "Download",
                  "Polling cost", "sora serve"):
        assert f"## {title}" in text or f". {title}" in text, title
    assert "error:" not in text
    assert str(tmp_path) not in text and "/tmp/" not in text  # no paths of this machine
    assert "sora --help" in proc.stdout  # the table on stdout too


@pytest.mark.parametrize("argv", [["--help"], ["status", "@last"], ["list", "-n", "50"],
                                  ["submit", "a red fox", "-q"]])
def test_hot_commands_import_no_heavy_library(tmp_path: Path, argv: list[str]) -> None:
    env = _env(tmp_path)
    sora = [sys.executable, "-m", "sora_cli"]
    subprocess.run([*sora, "list"], env=env, check=True, capture_output=True)  # makes the store
    fd = os.open(tmp_path / "runner.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a "live runner": submit starts none
        if argv[0] == "status":
            subprocess.run([*sora, "submit", "seed", "-q"], env=env, check=True,
                           capture_output=True)
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "sora_cli", *argv],
                              env=env, capture_output=True, text=True)
    finally:
        os.close(fd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = {line.rsplit("|", 1)[-1].strip()
               for line in proc.stderr.splitlines() if line.startswith("import time:")}
    imported = {m.split(".")[0] for m in modules}
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    # no provider adapter either: they load when a job of theirs is worked
    assert not {m for m in modules if m.startswith("sora_cli.providers")}, sorted(
        m for m in modules if m.startswith("sora_cli.providers"))


def test_hot_queries_read_through_indexes(tmp_path: Path, bench_modules: None) -> None:
    """Every SELECT that status and list run, on a store of 2,000 jobs: no full scan."""
    import store_size

    ids, _ = store_size.build(tmp_path, 2000)
    fd = os.open(tmp_path / "runner.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a "live runner": no runner is started
        plans = store_size.query_plans(tmp_path, store_size.hot_commands(ids))
    finally:
        os.close(fd)
    assert len(plans) >= 5  # by id, by prefix, newest, newest by status, has_active...
    assert store_size.full_scans(plans) == []
