"""The HTTP API of `sora serve`, driven as a client would against a running server."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from e2e.harness import TEST_KEY

from sora_cli.domain.jobs import VideoRequest
from sora_cli.store.repository import Store

from .conftest import MakeServed, Served, sse_events

pytestmark = pytest.mark.e2e


def test_submit_run_and_fetch_the_video_as_the_original_service(served: Served) -> None:
    c = served.client()
    r = c.post("/api/task", json={"prompt": "a paper boat on a rainy street", "seconds": "8",
                                  "label": "boats"})
    assert r.status_code == 201, r.text
    job = r.json()
    cli = served.sora.job(job["id"])  # the same store, the same field names as --json
    assert set(job) == set(cli) and job["id"] == cli["id"] and job["seconds"] == 8
    done = served.wait_job(c, job["id"])
    assert c.get(f"/api/task/{job['id']}").json() == done  # the original path answers alike
    assert c.get(f"/api/jobs/{job['id'][:5]}").json()["id"] == job["id"]  # a prefix
    assert c.get("/api/jobs/@last").json()["id"] == job["id"]

    video = c.get(f"/api/jobs/{job['id']}/video")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content == Path(done["output_path"]).read_bytes()
    assert hashlib.sha256(video.content).hexdigest() == done["sha256"]
    assert video.headers["accept-ranges"] == "bytes"

    part = c.get(f"/api/jobs/{job['id']}/video", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == video.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(video.content)}"
    tail = c.get(f"/api/jobs/{job['id']}/video", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == video.content[-10:]
    beyond = c.get(f"/api/jobs/{job['id']}/video",
                   headers={"Range": f"bytes={len(video.content)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(video.content)}"
    # no thumbnail saved (save_thumbnails is off): 404, not some other file
    assert c.get(f"/api/jobs/{job['id']}/thumbnail").status_code == 404


def test_bad_input_is_422_with_the_clis_message_and_records_nothing(served: Served) -> None:
    c = served.client()
    cases = [{"prompt": "a fox", "size": "1x1"}, {"prompt": "a fox", "seconds": 5},
             {"prompt": " "}, {"prompt": "a fox", "label": "two\nlines"}]
    for body in cases:
        r = c.post("/api/jobs", json=body)
        assert r.status_code == 422, (body, r.text)
        argv = ["submit", body["prompt"]]
        for key in ("size", "seconds", "label"):
            if key in body:
                argv += [f"--{key}", str(body[key])]
        cli = served.sora.run(*argv)
        assert cli.returncode == 2 and cli.stderr.strip() == f"sora: {r.json()['detail']}"
    for body in ({"prompt": 5}, {"prompt": "x", "image": "/etc/passwd"}, ["x"],
                 {"prompt": "x", "params": ["fps"]},
                 {"prompt": "x", "model": "fal:fal-ai/veo3", "seconds": 5}):
        r = c.post("/api/jobs", json=body)
        assert r.status_code == 422 and r.json()["detail"], body
    assert c.post("/api/jobs", content=b"{not json",
                  headers={"Content-Type": "application/json"}).status_code == 422
    assert c.get("/api/jobs", params={"limit": "many"}).status_code == 422
    assert c.get("/api/jobs", params={"status": "done"}).status_code == 422
    assert c.get("/api/jobs").json() == {"jobs": [], "next_before": None}


def test_404_for_no_job_and_409_for_an_ambiguous_prefix(served: Served) -> None:
    c = served.client()
    job = served.submit(c, prompt="seed the store")
    db = sqlite3.connect(served.sora.home / "sora.db")
    with db:
        for job_id in ("zzzz2345", "zzzz2346"):  # twins by prefix, never picked up: cancelled
            db.execute("INSERT INTO jobs (id, prompt, model, size, seconds, status, progress, "
                       "created_at, updated_at, create_attempts, poll_count, download_attempts) "
                       "VALUES (?, 'twin', 'sora-2', '720x1280', 4, 'cancelled', 0, ?, ?, 0, 0, 0)",
                       (job_id, time.time() - 60, time.time() - 60))
    db.close()
    assert c.get("/api/jobs/zzzz").status_code == 409
    assert "ambiguous" in c.get("/api/task/zzzz").json()["detail"]
    assert c.get("/api/jobs/zzzz2345").status_code == 200
    assert c.get("/api/jobs/yyyy").status_code == 404
    assert c.get("/api/jobs/yyyy/video").status_code == 404
    assert c.get("/api/jobs/video_nothing").status_code == 404
    assert c.get("/api/jobs/zzzz2345/video").status_code == 404  # no saved file
    assert c.post("/api/jobs/yyyy/cancel", json={}).status_code == 404
    served.wait_job(c, job["id"])


def test_only_json_posts_from_this_origin(served: Served) -> None:
    c = served.client()
    form = c.post("/api/task", data={"prompt": "a form post"})
    assert form.status_code == 415
    text = c.post("/api/task", content=b'{"prompt": "x"}', headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    foreign = c.post("/api/task", json={"prompt": "x"}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    rebound = c.get("/api/jobs", headers={"Host": "evil.example"})  # DNS rebinding
    assert rebound.status_code == 421
    assert c.get("/api/jobs").json()["jobs"] == []  # none of them recorded anything
    same = c.post("/api/task", json={"prompt": "from the page"}, headers={"Origin": served.url})
    assert same.status_code == 201


def test_list_filters_pages_and_searches(served: Served) -> None:
    c = served.client()
    ids = [served.submit(c, prompt=f"Harbour at dawn, take {n}", label="harbour")["id"]
           for n in range(3)]
    other = served.submit(c, prompt="a red fox", label="fox")["id"]
    page = c.get("/api/jobs", params={"label": "harbour", "limit": 2}).json()
    assert [j["id"] for j in page["jobs"]] == [ids[2], ids[1]]
    assert page["next_before"] == ids[1]
    rest = c.get("/api/jobs", params={"label": "harbour", "before": ids[1]}).json()
    assert [j["id"] for j in rest["jobs"]] == [ids[0]] and rest["next_before"] is None
    assert [j["id"] for j in c.get("/api/jobs", params={"q": "RED FOX"}).json()["jobs"]] == [
        other]
    assert [j["id"] for j in c.get("/api/jobs", params={"q": "100%"}).json()["jobs"]] == []
    assert len(c.get("/api/jobs", params={"provider": "openai"}).json()["jobs"]) == 4
    assert c.get("/api/jobs", params={"provider": "fal"}).json()["jobs"] == []
    for job_id in [*ids, other]:
        served.wait_job(c, job_id)
    done = c.get("/api/jobs", params={"status": "completed,failed"}).json()["jobs"]
    assert [j["id"] for j in done] == [other, *reversed(ids)]
    spend = c.get("/api/spend").json()
    assert spend["total_usd"] == pytest.approx(1.6) and spend["completed_jobs"] == 4
    assert spend["today_usd"] == pytest.approx(1.6)


def test_cancel_and_retry(served: Served) -> None:
    c = served.client()
    failed = served.submit(c, prompt="something forbidden")
    served.wait_job(c, failed["id"], "failed")
    r = c.post(f"/api/jobs/{failed['id']}/retry", json={})
    assert r.status_code == 201 and r.json()["retry_of"] == failed["id"]
    assert c.post(f"/api/jobs/{failed['id']}/cancel", json={}).status_code == 409
    live = served.submit(c, prompt="cancel me soon")
    r = c.post(f"/api/jobs/{live['id']}/cancel", json={})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    ok = served.submit(c, prompt="a job that completes")
    served.wait_job(c, ok["id"])
    r = c.post(f"/api/jobs/{ok['id']}/retry", json={})
    assert r.status_code == 422 and "only failed or cancelled" in r.json()["detail"]


def test_events_stream_each_change_with_heartbeats(make_served: MakeServed) -> None:
    served = make_served("--heartbeat", "0.3")
    c = served.client()
    seen: list[tuple[str, str]] = []
    with c.stream("GET", "/api/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(sse_events(lines)) == ("comment", "connected")
        job = served.submit(c, prompt="watched live")
        deadline = time.monotonic() + 60
        for event, data in sse_events(lines):
            seen.append((event, data))
            if event == "job" and json.loads(data)["status"] == "completed":
                break
            assert time.monotonic() < deadline, seen
    jobs = [json.loads(d) for e, d in seen if e == "job"]
    assert {j["id"] for j in jobs} == {job["id"]}
    statuses = [j["status"] for j in jobs]
    assert statuses[-1] == "completed" and "running" in statuses
    assert set(jobs[-1]) == set(job)  # the --json shape
    assert ("comment", "keep-alive") in seen


def test_sigterm_ends_open_streams_and_exits_0(make_served: MakeServed) -> None:
    served = make_served()
    c = served.client()
    with c.stream("GET", "/api/events") as stream:
        lines = stream.iter_lines()
        assert next(sse_events(lines)) == ("comment", "connected")
        started = time.monotonic()
        served.proc.terminate()
        assert list(sse_events(lines)) == []  # the stream ends (no hang until a timeout)
    assert served.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 5


def test_the_api_key_never_appears_in_an_answer(served: Served) -> None:
    c = served.client()
    job = served.submit(c, prompt="keep the key secret")
    served.wait_job(c, job["id"])
    paths = ["/", "/static/gallery.js", "/api/info", "/api/spend", "/api/jobs",
             f"/api/jobs/{job['id']}", "/api/openapi.json"]
    for path in paths:
        r = c.get(path)
        assert r.status_code == 200, path
        assert TEST_KEY not in r.text and TEST_KEY[-8:] not in r.text, path
    schema = c.get("/api/openapi.json").json()
    assert {"/api/task", "/api/jobs", "/api/task/{ref}", "/api/jobs/{ref}", "/api/events",
            "/api/jobs/{ref}/video"} <= set(schema["paths"])


def test_over_budget_is_402(make_served: MakeServed) -> None:
    served = make_served(SORA_MAX_JOB_COST="0.5")
    c = served.client()
    r = c.post("/api/jobs", json={"prompt": "an expensive one", "seconds": 8})
    assert r.status_code == 402 and "max_job_cost" in r.json()["detail"]
    assert c.get("/api/jobs").json()["jobs"] == []
    assert c.post("/api/jobs", json={"prompt": "a cheap one"}).status_code == 201


def test_with_a_token_every_api_request_needs_it(make_served: MakeServed) -> None:
    served = make_served(SORA_SERVE_TOKEN="s3cret-token-for-tests")
    anon = httpx.Client(base_url=served.url, timeout=30)
    served.clients.append(anon)
    for path in ("/api/jobs", "/api/info", "/api/events", "/api/openapi.json"):
        r = anon.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    wrong = anon.get("/api/jobs", headers={"Authorization": "Bearer s3cret-token-for-test"})
    assert wrong.status_code == 401
    assert anon.post("/api/jobs", json={"prompt": "x"}).status_code == 401
    assert anon.get("/").status_code == 200  # the page shell: it asks for the token

    c = served.client()
    job = served.submit(c, prompt="a token-guarded video")
    served.wait_job(c, job["id"])
    key = c.get("/api/info").json()["access"]
    assert key and key != served.token
    video = f"/api/jobs/{job['id']}/video"
    assert anon.get(video).status_code == 401
    assert anon.get(video, params={"access": "nope"}).status_code == 401
    assert anon.get(video, params={"access": key}).status_code == 200
    assert anon.get("/api/jobs", params={"access": key}).status_code == 401  # media only
    assert c.get(video).status_code == 200
    proxied = c.get("/api/jobs", headers={"Host": "videos.example.org"})  # behind a proxy
    assert proxied.status_code == 200
    assert anon.get("/api/jobs", headers={"Host": "videos.example.org"}).status_code == 401


def test_a_port_in_use_is_one_line_and_exit_1(served: Served) -> None:
    port = served.url.rsplit(":", 1)[1]
    r = served.sora.run("serve", "--port", port, timeout=30)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("sora: cannot listen on 127.0.0.1:") and r.stderr.count("\n") == 1


def test_the_runner_is_started_for_jobs_recorded_elsewhere(served: Served) -> None:
    """A job recorded while no runner is alive (not by a command that starts one) is
    worked: the server starts a runner, as the CLI's reads do."""
    c = served.client()
    assert c.get("/api/jobs").status_code == 200  # the store exists
    assert not served.sora.runner()["running"]
    with Store.open(served.sora.home / "sora.db") as store:
        (job,) = store.add_jobs([VideoRequest(prompt="recorded behind everyone's back")])
    served.wait_job(c, job.id)
