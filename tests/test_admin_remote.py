"""The commands that reach the API themselves (`delete --remote`, `import`, `download
--variant`) and the runner's `save_thumbnails`, against the fake server on loopback."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from clirun import one_error, sora
from inproc import run_runner, settings_for
from waits import wait_until

from sora_cli.config import load_settings
from sora_cli.domain.jobs import Job, JobStatus, VideoRequest
from sora_cli.errors import InvalidInput
from sora_cli.fake.server import FakeOptions, FakeServer
from sora_cli.store.repository import Store


@pytest.fixture(autouse=True)
def online(home: Path, work: Path, server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API is the fake server; downloads go into `work`."""
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)


def remote(server: FakeServer, prompt: str, *, finished: bool = True, **kw: str) -> str:
    """A video made on the fake directly (by "another tool"), waited for when asked."""
    api = httpx.Client(base_url=server.base_url, headers={"Authorization": "Bearer other"})
    video_id = str(api.post("/videos", json={"prompt": prompt, **kw}).json()["id"])
    if finished:
        wait_until(lambda: api.get(f"/videos/{video_id}").json()["status"] in (
            "completed", "failed"), what="the fake video to finish")
    return video_id


def stored(home: Path) -> dict[str, Job]:
    with Store.open(home / "sora.db") as st:
        return {j.id: j for j in st.list_jobs(limit=None)}


def local_job(home: Path, video_id: str, to: JobStatus = JobStatus.COMPLETED) -> Job:
    """A local job whose remote video is `video_id`, walked up to `to`."""
    (home).mkdir(exist_ok=True)
    with Store.open(home / "sora.db") as st:
        (job,) = st.add_jobs([VideoRequest("local")])
        st.transition(job.id, JobStatus.SUBMITTING)
        st.transition(job.id, JobStatus.RUNNING, remote_id=video_id, remote_status="queued")
        if to in (JobStatus.DOWNLOADING, JobStatus.COMPLETED):
            st.transition(job.id, JobStatus.DOWNLOADING, remote_status="completed")
        if to is JobStatus.COMPLETED:
            st.transition(job.id, JobStatus.COMPLETED)
        got = st.get(job.id)
        assert got is not None
        return got


# --- delete --remote ---------------------------------------------------------------------


def test_delete_remote_deletes_the_video_on_the_server(home: Path, server: FakeServer) -> None:
    video_id = remote(server, "to go")
    job = local_job(home, video_id)
    r = sora("delete", job.id, "--remote", "--yes")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == job.id and f"deleted remote video {video_id}" in r.stderr
    assert server.backend.inspect(video_id)["deleted"] is True
    assert stored(home) == {}


def test_delete_remote_of_a_video_already_gone_deletes_the_job(home: Path,
                                                              server: FakeServer) -> None:
    job = local_job(home, "video_0123456789abcdef0123456789abcdef")
    r = sora("delete", job.id, "--remote", "--yes")
    assert r.exit_code == 0, r.stderr
    assert "already gone" in r.stderr and stored(home) == {}


def test_a_refused_remote_delete_keeps_that_job(home: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeServer(FakeOptions(job_seconds=60)) as slow:
        monkeypatch.setenv("OPENAI_BASE_URL", slow.base_url)
        video_id = remote(slow, "still going", finished=False)
        job = local_job(home, video_id, JobStatus.RUNNING)
        with Store.open(home / "sora.db") as st:  # cancelled here, still running there
            st.transition(job.id, JobStatus.CANCELLED)
        r = sora("delete", job.id, "--remote", "--yes")
    assert r.exit_code == 1 and r.stdout == ""
    assert f"job {job.id} kept" in r.stderr and "only completed or failed" in r.stderr
    assert job.id in stored(home)


# --- import ------------------------------------------------------------------------------------


def test_import_adopts_a_remote_video_as_a_running_job(home: Path, server: FakeServer) -> None:
    video_id = remote(server, "made elsewhere", model="sora-2-pro", size="1792x1024",
                      seconds="8")
    r = sora("import", video_id)
    assert r.exit_code == 0, r.stderr
    job = stored(home)[r.stdout.strip()]
    assert job.status is JobStatus.RUNNING and job.remote_id == video_id
    assert (job.prompt, job.model, job.size, job.seconds) == (
        "made elsewhere", "sora-2-pro", "1792x1024", 8)
    with Store.open(home / "sora.db") as st:
        assert [e.kind for e in st.events(job.id)] == ["imported"]
    r = sora("import", video_id)
    assert r.exit_code == 0 and r.stdout == ""
    assert f"{video_id} is already job {job.id}: skipped" in r.stderr
    assert len(stored(home)) == 1


def test_import_links_a_remix_to_its_known_source(home: Path, server: FakeServer) -> None:
    source = remote(server, "the source")
    src_job = local_job(home, source)
    api = httpx.Client(base_url=server.base_url, headers={"Authorization": "Bearer x"})
    remix_id = api.post(f"/videos/{source}/remix", json={"prompt": "remixed"}).json()["id"]
    r = sora("import", remix_id, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["remix_of"] == src_job.id


def test_import_remote_list_adopts_what_can_still_be_saved(home: Path,
                                                           server: FakeServer) -> None:
    known = remote(server, "already mine")
    local_job(home, known)
    failed = remote(server, "forbidden one")
    a, b = remote(server, "first"), remote(server, "second", finished=False)
    r = sora("import", "--remote-list", "--json")
    assert r.exit_code == 0, r.stderr
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert [g["remote_id"] for g in got] == [a, b]  # oldest first
    assert "1 listed video(s) already in the store" in r.stderr
    assert "1 failed or expired video(s): skipped" in r.stderr
    assert failed not in {j.remote_id for j in stored(home).values()}


@pytest.mark.parametrize(("args", "code", "expected"), [
    ([], 2, "give remote video ids or --remote-list"),
    (["video_x", "--remote-list"], 2, "give remote video ids or --remote-list"),
    (["video/../x"], 2, "not a remote video id"),
    (["video_0123456789abcdef0123456789abcdef"], 3, "no remote video"),
])
def test_import_bad_input_changes_nothing(home: Path, server: FakeServer, args: list[str],
                                          code: int, expected: str) -> None:
    good = remote(server, "fine", finished=False)
    extra = [good] if code == 3 else []  # an unknown id among good ones: none imported
    assert expected in one_error(sora("import", *extra, *args), code)
    assert stored(home) == {} if (home / "sora.db").exists() else True


def test_import_needs_the_key(home: Path, server: FakeServer,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    assert "no API key" in one_error(sora("import", remote(server, "x", finished=False)), 4)


# --- download --variant ------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("variant", "ext"), [("spritesheet", "jpg"), ("thumbnail", "webp")])
def test_download_a_variant_from_the_server(home: Path, server: FakeServer, work: Path,
                                            variant: str, ext: str) -> None:
    video_id = remote(server, "pictures")
    job = local_job(home, video_id)
    r = sora("download", job.id, "--variant", variant)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == f"{job.id}.{ext}"
    assert sha256(work / f"{job.id}.{ext}") == server.expected_sha256(video_id, variant)
    one_error(sora("download", job.id, "--variant", variant), 2)  # exists: no --force
    r = sora("download", job.id, "--variant", variant, "-o", "out/")
    assert r.stdout.strip() == f"out/{job.id}.{ext}"


def test_download_uses_the_runners_thumbnail_when_it_kept_one(home: Path, work: Path) -> None:
    job = local_job(home, "video_0123456789abcdef0123456789abcdef")  # gone from the server
    kept = home / "videos" / f"{job.id}.webp"
    kept.parent.mkdir(exist_ok=True)
    kept.write_bytes(b"RIFF-kept")
    with Store.open(home / "sora.db") as st:
        st.update(job.id, thumbnail_path=str(kept))
    r = sora("download", job.id, "--variant", "thumbnail", "-o", "t.webp")
    assert r.exit_code == 0, r.stderr
    assert (work / "t.webp").read_bytes() == b"RIFF-kept"


def test_download_an_unknown_variant_exits_2(home: Path, work: Path) -> None:
    job = local_job(home, "video_abc")
    assert "--variant must be one of video, thumbnail, spritesheet" in one_error(
        sora("download", job.id, "--variant", "poster"), 2)
    assert list(work.glob(f"{job.id}*")) == []


# --- save_thumbnails ---------------------------------------------------------------------


def test_save_thumbnails_is_a_boolean_setting(tmp_path: Path) -> None:
    env = {"SORA_HOME": str(tmp_path)}
    assert load_settings(env).save_thumbnails is False
    assert load_settings({**env, "SORA_SAVE_THUMBNAILS": "yes"}).save_thumbnails is True
    assert load_settings({**env, "SORA_SAVE_THUMBNAILS": "0"}).save_thumbnails is False
    (tmp_path / "config.toml").write_text("save_thumbnails = true\n")
    assert load_settings(env).save_thumbnails is True
    with pytest.raises(InvalidInput, match="save_thumbnails must be true or false"):
        load_settings({**env, "SORA_SAVE_THUMBNAILS": "maybe"})
    (tmp_path / "config.toml").write_text("save_thumbnails = 1.5\n")
    with pytest.raises(InvalidInput, match="save_thumbnails must be true or false"):
        load_settings(env)


@pytest.mark.parametrize("save", [True, False])
def test_the_runner_saves_thumbnails_when_configured(home: Path, server: FakeServer,
                                                     save: bool) -> None:
    store = Store.open(home / "sora.db")
    (job,) = store.add_jobs([VideoRequest("with a thumbnail")])
    run_runner(settings_for(home, server, save_thumbnails=save), store)
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    thumb = home / "videos" / f"{job.id}.webp"
    if save:
        assert done.thumbnail_path == str(thumb)
        assert sha256(thumb) == server.expected_sha256(str(done.remote_id), "thumbnail")
    else:
        assert done.thumbnail_path is None and not thumb.exists()
