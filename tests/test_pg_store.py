"""The job store on a real PostgreSQL server: the portable store tests again, claims
from many connections (SKIP LOCKED), the fleet-wide limit, id prefixes under a
non-C collation, index use, connection loss (the runner carries on), clear errors,
and commands on SQLite that never import a database driver.

Every test gets an empty schema of its own in a database made for this session
(see pgtest.py); they skip only when no server answers and CI is unset.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pgtest
import pytest
import test_store as portable
from test_store import (  # noqa: F401  (collected here, against PostgreSQL)
    test_a_live_lease_is_not_taken,
    test_a_remote_id_owned_by_another_job_is_refused,
    test_a_runner_never_claims_its_own_lapsed_lease,
    test_add_jobs_is_all_or_nothing,
    test_add_jobs_records_queued_jobs,
    test_add_no_jobs,
    test_ambiguous_prefix_lists_candidates,
    test_an_expired_lease_is_taken_over,
    test_an_id_seen_only_in_events_is_not_reused,
    test_claim_oldest_first_up_to_the_limit,
    test_concurrent_writers_and_a_reader,
    test_default_limit_is_twenty,
    test_failure_keeps_the_error,
    test_final_jobs_are_never_claimed,
    test_has_active,
    test_ids_are_unique_lowercase_and_long_enough,
    test_illegal_transitions_change_nothing,
    test_junk_refs_are_not_found_not_a_crash,
    test_list_newest_first_with_filter_and_limit,
    test_log_appends_without_changing_the_job,
    test_release_host,
    test_renew_and_release,
    test_reopening_keeps_everything,
    test_resolve_by_id_prefix_and_case,
    test_resolve_by_remote_id,
    test_resolve_last,
    test_runner_heartbeat_rows,
    test_short_or_unknown_refs,
    test_transition_of_unknown_job,
    test_transitions_append_events,
    test_unknown_fields_are_refused_and_rolled_back,
    test_update_changes_fields_but_not_status,
    test_very_ambiguous_prefix_is_cut_short,
    test_wrong_runner_id_is_refused,
)
from waits import wait_until

from sora_cli.domain.jobs import JobStatus, VideoRequest
from sora_cli.errors import InvalidInput, JobNotFound, StoreUnavailable
from sora_cli.store.pg import PgDB
from sora_cli.store.repository import Store

pytestmark = pytest.mark.postgres
S = JobStatus
SORA = str(Path(sys.executable).with_name("sora"))


@pytest.fixture
def db(pg_url: str) -> str:
    """For the tests imported from test_store: where the store is (here, a URL)."""
    return pg_url


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    with Store.open(pg_url) as s:
        yield s


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Both backends, for the behaviour that must be the same on each."""
    if request.param == "sqlite":
        return tmp_path / "sora.db"
    return str(request.getfixturevalue("pg_url"))


def add(store: Store, n: int, now: float = 1000.0) -> list[str]:
    return [j.id for j in store.add_jobs([VideoRequest(f"p{i}") for i in range(n)], now=now)]


def in_threads(count: int, work: Callable[[int], None], timeout: float = 60) -> None:
    start = threading.Barrier(count, timeout=timeout)
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            start.wait()
            work(k)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


# --- claims side by side ---------------------------------------------------------------


def test_concurrent_claims_never_share_a_job(pg_url: str) -> None:
    with Store.open(pg_url) as s:
        ids = add(s, 120)
    claimed: dict[int, list[str]] = {}

    def claimer(k: int) -> None:
        with Store.open(pg_url) as s:
            got: list[str] = []
            while batch := s.claim(f"runner-{k}", 3, 60, now=2000.0):
                got += [j.id for j in batch]
            claimed[k] = got

    in_threads(6, claimer)
    everything = [i for got in claimed.values() for i in got]
    assert sorted(everything) == sorted(ids)  # each job once, none left
    assert sum(1 for got in claimed.values() if got) >= 2  # they did claim side by side
    with Store.open(pg_url) as s:
        for job_id in ids:
            claims = [e for e in s.events(job_id) if e.kind == "claimed"]
            assert len(claims) == 1


def test_the_fleet_limit_bounds_concurrent_claims(pg_url: str) -> None:
    with Store.open(pg_url) as s:
        add(s, 60)
        s.set_fleet_limit(7)
        assert s.fleet_limit() == 7

    def claimer(k: int) -> None:
        with Store.open(pg_url) as s:
            for _ in range(2):  # at most 6 each: filling the 7 takes two runners or more
                s.claim(f"runner-{k}", 3, 60, now=2000.0)

    in_threads(6, claimer)
    with Store.open(pg_url) as s:
        held = [j for j in s.list_jobs(limit=None) if j.runner_id is not None]
        assert len(held) == 7
        assert len({j.runner_id for j in held}) >= 2


def test_fleet_limit_counts_live_leases_only(location: str | Path) -> None:
    with Store.open(location) as s:
        a, b, c, d = add(s, 4)
        assert s.fleet_limit() is None
        s.set_fleet_limit(2)
        assert [j.id for j in s.claim("r1", 5, 60, now=1000.0)] == [a, b]
        assert s.claim("r2", 5, 60, now=1001.0) == []  # the fleet is full
        s.transition(a, S.CANCELLED)  # a final job's lease no longer counts
        assert [j.id for j in s.claim("r2", 5, 60, now=1002.0)] == [c]
        # r1's lease on b runs out: it no longer counts, and b is free to take over
        assert [j.id for j in s.claim("r2", 5, 60, now=1061.0)] == [b]
        s.set_fleet_limit(None)
        assert s.fleet_limit() is None
        assert [j.id for j in s.claim("r3", 5, 60, now=1062.0)] == [d]


def test_fleet_lists_live_runners_and_their_leases(location: str | Path) -> None:
    with Store.open(location) as s:
        a, b, _ = add(s, 3)
        s.runner_beat("h1:x:1:aa", host="h1", pid=1, started_at=900.0, jobs_in_flight=2,
                      now=1000.0)
        s.runner_beat("h2:y:2:bb", host="h2", pid=2, started_at=950.0, jobs_in_flight=0,
                      now=1000.0)
        s.runner_beat("h3:z:3:cc", host="h3", pid=3, started_at=1.0, jobs_in_flight=0,
                      now=10.0)  # silent since: dead
        s.claim("h1:x:1:aa", 2, 60, now=1000.0)
        fleet = s.fleet(stale_after=10, now=1005.0)
        assert [(r.runner_id, r.host, r.pid, r.leases, r.jobs_in_flight)
                for r in fleet] == [("h1:x:1:aa", "h1", 1, 2, 2), ("h2:y:2:bb", "h2", 2, 0, 0)]
        assert fleet[0].heartbeat_at == 1000.0
        s.prune_runners(before=500.0)
        assert {r.runner_id for r in s.runners()} == {"h1:x:1:aa", "h2:y:2:bb"}
        assert {a, b} == {j.id for j in s.list_jobs() if j.runner_id == "h1:x:1:aa"}


def test_checked_adds_run_one_at_a_time(location: str | Path) -> None:
    """A check made inside add_jobs (a budget, say) cannot race another one."""
    Store.open(location).close()

    def at_most_three(store: Store) -> None:
        if store.count_active() >= 3:
            raise InvalidInput("the store is full")
        time.sleep(0.05)  # a window for another add to slip in, if it could

    outcomes: list[str] = []

    def adder(k: int) -> None:
        with Store.open(location) as s:
            try:
                s.add_jobs([VideoRequest(f"p{k}")], check=at_most_three)
                outcomes.append("added")
            except InvalidInput:
                outcomes.append("refused")

    in_threads(6, adder)
    assert sorted(outcomes) == ["added"] * 3 + ["refused"] * 3
    with Store.open(location) as s:
        assert s.count_active() == 3


# --- PostgreSQL specifics -----------------------------------------------------------------


def test_id_prefixes_under_an_icu_collation(monkeypatch: pytest.MonkeyPatch,
                                            pg_database: pgtest.Database) -> None:
    # In en-US, punctuation is ignored at first: 'abcz2345' < 'abc{' is false there, so
    # the prefix range for "abcz" would find nothing if ids used the database collation.
    options = "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
    with pgtest.fresh_database(pg_database.admin_url, create_options=options) as icu:
        assert icu.execute("SELECT 'abcz2345' < 'abc{'") == [(False,)]
        portable.controlled_ids(monkeypatch, "abcz2345", "abcd2345", "abcd3456", "abc92345")
        with Store.open(icu.url) as s:
            portable.add(s, "z", "d2", "d3", "9")
            assert s.resolve("abcz").prompt == "z"
            assert s.resolve("abc9").prompt == "9"
            with pytest.raises(JobNotFound, match="ambiguous: abcd2345, abcd3456"):
                s.resolve("abcd")
            s.runner_beat("h:aa:1:x", host="h", pid=1, started_at=1, jobs_in_flight=0)
            s.runner_beat("h:ab:2:y", host="h", pid=2, started_at=1, jobs_in_flight=0)
            s.release_host("h:aa:", keep="none")
            assert [r.runner_id for r in s.runners()] == ["h:ab:2:y"]


def explain(conn: PgDB, sql: str, params: Any) -> list[str]:
    return [r[0] for r in conn.execute(f"EXPLAIN {sql}", params).fetchall()]


@pytest.mark.parametrize("action", [
    pytest.param(lambda s: s.resolve("abcd"), id="resolve-prefix"),
    pytest.param(lambda s: s.resolve("video_1"), id="resolve-remote-id"),
    pytest.param(lambda s: s.resolve("@last"), id="resolve-last"),
    pytest.param(lambda s: s.list_jobs(limit=20), id="list"),
    pytest.param(lambda s: s.list_jobs(statuses=[S.QUEUED], limit=20), id="list-status"),
    pytest.param(lambda s: s.has_active(), id="has-active"),
    pytest.param(lambda s: s.claim("r", 4, 60), id="claim"),
    pytest.param(lambda s: s.renew("r", 60), id="renew"),
    pytest.param(lambda s: s.release_host("h:", keep="h:1"), id="release-host"),
    pytest.param(lambda s: s.update("abcd2345", progress=1), id="update"),
])
def test_queries_can_use_an_index(store: Store, monkeypatch: pytest.MonkeyPatch,
                                  action: Callable[[Store], object]) -> None:
    portable.controlled_ids(monkeypatch, "abcd2345", *(f"wxyz{c}{c}{c}{c}" for c in "2345678"))
    [first, *_] = portable.add(store, *"abcdefgh")
    store.transition(first, S.SUBMITTING)
    store.transition(first, S.RUNNING, remote_id="video_1")
    conn = store._conn
    assert isinstance(conn, PgDB)
    seen: list[tuple[str, Any]] = []
    conn.trace = lambda sql, params: seen.append((sql, params))
    action(store)
    conn.trace = None
    statements = [(sql, p) for sql, p in seen if " jobs" in sql and sql.split()[0].upper()
                  in ("SELECT", "UPDATE", "DELETE")]
    assert statements
    conn.execute("SET enable_seqscan = off")  # a seq scan now only when no index can serve
    try:
        for sql, params in statements:
            plan = explain(conn, sql, params)
            assert not [line for line in plan if "Seq Scan on jobs" in line], (sql, plan)
    finally:
        conn.execute("SET enable_seqscan = on")


def test_a_read_survives_a_dropped_connection(pg_url: str,
                                              pg_database: pgtest.Database) -> None:
    with Store.open(pg_url) as s:
        [job_id] = add(s, 1)
        assert pg_database.terminate_sora_connections() >= 1
        job = s.get(job_id)  # a fresh connection, at once
        assert job is not None and job.prompt == "p0"


def test_a_write_on_a_dropped_connection_fails_cleanly(pg_url: str,
                                                       pg_database: pgtest.Database) -> None:
    with Store.open(pg_url) as s:
        [job_id] = add(s, 1)
        with pytest.raises(StoreUnavailable, match="lost the connection"), s._write() as conn:
            conn.execute("UPDATE jobs SET progress = 50 WHERE id = ?", (job_id,))
            pg_database.terminate_sora_connections()
            conn.execute("UPDATE jobs SET progress = 60 WHERE id = ?", (job_id,))
        assert not s._conn.in_transaction
        job = s.get(job_id)
        assert job is not None and job.progress == 0  # nothing of it was kept
        s.update(job_id, progress=70)  # and the store works again
        job = s.get(job_id)
        assert job is not None and job.progress == 70


def test_an_unreachable_database_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "SORA_HOME": str(tmp_path),
           "SORA_DATABASE_URL": "postgresql://sora:hunter2@127.0.0.1:1/sora"}
    for args in (["list"], ["status", "abcd"], ["runner", "status"]):
        r = subprocess.run([SORA, *args], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 1, (args, r.stderr)
        lines = r.stderr.splitlines()
        assert len(lines) == 1, r.stderr
        assert lines[0].startswith("sora: cannot reach the job store at "
                                   "postgresql://***@127.0.0.1:1/sora: ")
        assert "hunter2" not in r.stderr + r.stdout


DRIVERS = ("psycopg", "sqlalchemy", "sqlmodel")
PROBE = """
import json, sys
from sora_cli.__main__ import main
sys.argv = ["sora", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("LOADED", json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
"""


def loaded_drivers(args: list[str], env: dict[str, str]) -> list[str]:
    """The database libraries `sora ARGS` imported (run in a fresh interpreter)."""
    import json

    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                       env=env, timeout=60)
    [line] = [ln for ln in r.stderr.splitlines() if ln.startswith("LOADED ")]
    return sorted(set(json.loads(line.removeprefix("LOADED "))) & set(DRIVERS))


def test_commands_import_no_database_library_they_do_not_need(tmp_path: Path,
                                                              pg_url: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "SORA_HOME": str(tmp_path), "OPENAI_API_KEY": "sk-x",
           "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "SORA_IDLE_EXIT_SECONDS": "0"}
    with Store.open(tmp_path / "sora.db") as s:  # schema current: nothing to migrate
        [job_id] = add(s, 1)
        s.transition(job_id, S.CANCELLED)
    for args in (["--help"], ["list"], ["status", job_id], ["runner", "status"]):
        assert loaded_drivers(args, env) == [], args
    with Store.open(pg_url):
        pass
    pg_env = {**env, "SORA_DATABASE_URL": pg_url}
    assert loaded_drivers(["list"], pg_env) == ["psycopg"]  # and no SQLAlchemy either


def test_submit_on_sqlite_imports_no_database_library(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "SORA_HOME": str(tmp_path), "OPENAI_API_KEY": "sk-x",
           "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "SORA_IDLE_EXIT_SECONDS": "0",
           "SORA_MAX_RETRIES": "0"}
    Store.open(tmp_path / "sora.db").close()
    (tmp_path / "runner.lock").touch()
    assert loaded_drivers(["submit", "a fox"], env) == []
    with Store.open(tmp_path / "sora.db") as s:
        assert [j.prompt for j in s.list_jobs()] == ["a fox"]
        # the runner it started (no network here) records the failure and exits
        wait_until(lambda: not s.has_active(), 60, "the runner to record the failure")


# --- the runner on PostgreSQL, through dropped connections -------------------------------


def test_the_runner_carries_on_through_dropped_connections(
        tmp_path: Path, pg_url: str, pg_database: pgtest.Database) -> None:
    from inproc import run_runner, settings_for

    from sora_cli.fake.server import FakeOptions, FakeServer

    n = 24
    with FakeServer(FakeOptions(job_seconds=0.3, poll_after_ms=50, video_bytes=20_000)) as fake:
        s = settings_for(tmp_path, fake, max_in_flight=8, lease_seconds=3.0,
                         creates_per_minute=10_000)
        with Store.open(pg_url) as store:
            jobs = store.add_jobs([VideoRequest(f"clip {i}") for i in range(n)])
            stop = threading.Event()
            kills = 0

            def killer() -> None:
                nonlocal kills
                while not stop.wait(0.25):
                    kills += pg_database.terminate_sora_connections()

            thread = threading.Thread(target=killer)
            thread.start()
            try:
                run_runner(s, store, runner_id="host:aa:1:a", timeout=120)
            finally:
                stop.set()
                thread.join()
            assert kills >= 2
            for job in jobs:
                done = store.get(job.id)
                assert done is not None and done.status is S.COMPLETED, done
                assert done.sha256 == fake.expected_sha256(done.remote_id or "")
                assert done.output_host == "host"
            assert fake.create_count() == n
            assert all(fake.create_count(f"clip {i}") == 1 for i in range(n))


def test_runner_waits_for_the_store_to_come_back(tmp_path: Path, pg_url: str) -> None:
    """The store is away for a while (every connection refused): the loop backs off
    and finishes the work once it returns."""
    from inproc import run_runner, settings_for

    from sora_cli.fake.server import FakeOptions, FakeServer
    from sora_cli.store import pg

    with FakeServer(FakeOptions(job_seconds=0.2, poll_after_ms=50, video_bytes=10_000)) as fake:
        s = settings_for(tmp_path, fake, lease_seconds=30.0, creates_per_minute=10_000)
        with Store.open(pg_url) as store:
            jobs = store.add_jobs([VideoRequest(f"clip {i}") for i in range(4)])
            conn = store._conn
            assert isinstance(conn, pg.PgDB)
            real_url, refusals = conn._url, 0
            away_until = time.monotonic() + 1.0

            def flaky_connect() -> Any:
                nonlocal refusals
                if time.monotonic() < away_until:
                    refusals += 1
                    raise StoreUnavailable("cannot reach the job store (test: it is away)")
                return pg.psycopg.connect(real_url, autocommit=True,
                                          application_name="sora")

            conn._connect = flaky_connect  # type: ignore[method-assign]
            assert conn._conn is not None
            conn._conn.close()  # the next statement finds it gone, and reconnecting fails
            run_runner(s, store, runner_id="host:aa:1:a", timeout=60)
            assert refusals >= 2
            assert all((j2 := store.get(j.id)) and j2.status is S.COMPLETED for j in jobs)
            assert fake.create_count() == 4



# --- the team set-up: files across machines, settings ---------------------------------


def test_download_on_another_machine(tmp_path: Path, pg_url: str) -> None:
    import hashlib

    from inproc import run_runner, settings_for

    from sora_cli.errors import SoraError
    from sora_cli.fake.server import FakeOptions, FakeServer
    from sora_cli.services.context import Context
    from sora_cli.services.export import export

    share = tmp_path / "share"
    for machine in "abc":
        (tmp_path / machine).mkdir()
    with FakeServer(FakeOptions(job_seconds=0.2, poll_after_ms=50, video_bytes=30_000)) as fake:
        machine_a = settings_for(tmp_path / "a", fake, database_url=pg_url,
                                 shared_videos_dir=str(share))
        with Store.open(pg_url) as store:
            [job] = store.add_jobs([VideoRequest("a shared fox")])
            run_runner(machine_a, store, runner_id="host-a:aa:1:x")
            done = store.get(job.id)
            assert done is not None and done.status is S.COMPLETED
            assert (done.output_path, done.output_host) == (str(share / f"{job.id}.mp4"),
                                                            "host-a")
            expected = Path(done.output_path).read_bytes()
            assert hashlib.sha256(expected).hexdigest() == done.sha256

            # Machine B mounts the share at another path: the copy comes from there.
            share.rename(tmp_path / "share-on-b")
            (tmp_path / "mnt").symlink_to(tmp_path / "share-on-b")
            machine_b = settings_for(tmp_path / "b", fake, database_url=pg_url,
                                     shared_videos_dir=str(tmp_path / "mnt"))
            ctx = Context(machine_b)
            try:
                export(ctx, done, tmp_path / "b" / "from-share.mp4", force=False)
                assert (tmp_path / "b" / "from-share.mp4").read_bytes() == expected
                # Machine C sees no copy: fetched from the API while it has not expired.
                ctx.settings = settings_for(tmp_path / "c", fake, database_url=pg_url)
                export(ctx, done, tmp_path / "c" / "fetched.mp4", force=False)
                assert (tmp_path / "c" / "fetched.mp4").read_bytes() == expected
                # Expired, and no copy readable here: say where the file is.
                store.update(job.id, expires_at=time.time() - 1)
                expired = store.get(job.id)
                assert expired is not None
                with pytest.raises(SoraError) as info:
                    export(ctx, expired, tmp_path / "c" / "late.mp4", force=False)
                message = str(info.value)
                assert "expired on the server" in message and "on host-a" in message
                assert done.output_path in message and "shared_videos_dir" in message
                assert not (tmp_path / "c" / "late.mp4").exists()
            finally:
                ctx.close()


def test_config_show_masks_the_database_password(tmp_path: Path) -> None:
    import json

    env = {"PATH": "/usr/bin:/bin", "SORA_HOME": str(tmp_path),
           "SORA_DATABASE_URL": "postgresql://sora:hunter2@db.internal/sora",
           "SORA_SHARED_VIDEOS_DIR": str(tmp_path / "share"), "SORA_FLEET_MAX_IN_FLIGHT": "12"}
    r = subprocess.run([SORA, "config", "show", "--json"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["database_url"] == "postgresql://***@db.internal/sora"  # the whole userinfo
    assert (data["shared_videos_dir"], data["fleet_max_in_flight"]) == (
        str(tmp_path / "share"), 12)
    assert "hunter2" not in r.stdout + r.stderr
    bad = subprocess.run([SORA, "list"], capture_output=True, text=True, timeout=60,
                         env={**env, "SORA_DATABASE_URL": "mysql://sora:hunter2@db/sora"})
    assert bad.returncode == 2 and "must be a postgresql:// URL" in bad.stderr
    assert "hunter2" not in bad.stderr
