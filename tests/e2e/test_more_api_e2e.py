"""The rest of the Videos API end to end: image upload, remix, variants, retry, delete
--remote, prune, import and logs, with real `sora` processes, a real detached runner
and `sora fake-server`."""

from __future__ import annotations

import hashlib
import json
import struct
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    TEST_KEY,
    FakeProc,
    MakeFake,
    MakeSora,
    Sora,
    make_env,
    start_fake,
    stop_proc,
    wait_for,
    wait_job,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def quick(make_fake: MakeFake) -> FakeProc:
    return make_fake("--job-seconds", "0.5", "--poll-after-ms", "100", "--video-bytes", "20000",
                     "--fail-prompt", "forbidden")


@pytest.fixture
def s(quick: FakeProc, make_sora: MakeSora) -> Sora:
    return make_sora(quick, SORA_SAVE_THUMBNAILS="1")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seen(fake: FakeProc, video_id: str) -> dict[str, Any]:
    return dict(fake.get(f"/_fake/videos/{video_id}"))


def variant_sha(fake: FakeProc, video_id: str, variant: str) -> str:
    return str(fake.get(f"/_fake/sha256/{video_id}?variant={variant}")["sha256"])


def jpeg(w: int, h: int) -> bytes:
    frame = struct.pack(">BHHB", 8, h, w, 3) + b"\x01\x11\x00\x02\x11\x01\x03\x11\x01"
    return (b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
            + b"\xff\xc0" + struct.pack(">H", 2 + len(frame)) + frame + b"\xff\xd9")


def finished(s: Sora, job_id: str) -> dict[str, Any]:
    s.run("wait", job_id, "--timeout", "30")
    return s.job(job_id)


def test_image_upload_remix_and_variants(s: Sora, quick: FakeProc) -> None:
    (s.cwd / "ref.png").write_bytes(jpeg(1280, 720))  # a JPEG under a .png name
    r = s.run("submit", "a harbour at dawn", "--image", "ref.png", "--size", "1280x720")
    assert r.returncode == 0, r.stderr
    src_id = r.stdout.strip()
    (s.cwd / "ref.png").unlink()  # the job kept its own copy
    src = finished(s, src_id)
    assert src["status"] == "completed", src
    ref = seen(quick, src["remote_id"])["input_reference"]
    assert ref["kind"] == "file" and ref["content_type"] == "image/jpeg"
    assert ref["sha256"] == hashlib.sha256(jpeg(1280, 720)).hexdigest()
    # save_thumbnails: the runner kept the thumbnail next to the video
    assert src["thumbnail_path"] == str(s.home / "videos" / f"{src_id}.webp")
    assert sha256_of(Path(src["thumbnail_path"])) == variant_sha(quick, src["remote_id"],
                                                                  "thumbnail")

    remix_id = s.ok("remix", src_id[:5], "the same harbour at night").strip()
    out = s.ok("wait", remix_id, "--download", "-o", "clips/").strip()
    remix = s.job(remix_id)
    assert remix["remix_of"] == src_id and (remix["size"], remix["seconds"]) == ("1280x720", 4)
    assert seen(quick, remix["remote_id"])["remixed_from_video_id"] == src["remote_id"]
    assert sha256_of(s.cwd / out) == quick.sha256(remix["remote_id"])
    assert f"remixes:        {remix_id}" in s.ok("status", src_id)
    assert f"remix_of:       {src_id}" in s.ok("status", remix_id)

    for variant, ext in (("spritesheet", "jpg"), ("thumbnail", "webp"), ("video", "mp4")):
        path = s.ok("download", remix_id, "--variant", variant, "-o", "v/").strip()
        assert path == f"v/{remix_id}.{ext}"
        assert sha256_of(s.cwd / path) == variant_sha(quick, remix["remote_id"], variant)
    r = s.run("download", remix_id, "--variant", "poster")
    assert r.returncode == 2 and r.stdout == "" and "--variant must be one of" in r.stderr

    url = "https://example.com/ref.jpg"
    by_url = s.ok("submit", "from a url", "--image", url).strip()
    job = finished(s, by_url)
    assert seen(quick, job["remote_id"])["input_reference"] == {"kind": "image_url",
                                                                "image_url": url}


def test_bad_images_and_remix_of_an_unfinished_job_change_nothing(s: Sora,
                                                                  quick: FakeProc) -> None:
    (s.cwd / "small.png").write_bytes(jpeg(640, 480))
    (s.cwd / "notes.png").write_text("not an image")
    for image, expected in (("small.png", "is 640x480 but the video is 720x1280"),
                            ("notes.png", "is not a JPEG, PNG or WebP image")):
        r = s.run("submit", "a fox", "--image", image)
        assert r.returncode == 2 and r.stdout == "" and expected in r.stderr
        assert len(r.stderr.splitlines()) == 1
    assert s.run("list", "-q").stdout == ""
    job_id = s.ok("submit", "still going").strip()
    r = s.run("remix", job_id, "again")
    assert r.returncode == 2 and "only a completed job can be remixed" in r.stderr
    assert s.ok("list", "-q").split() == [job_id]
    assert quick.stats()["creates"] <= 1


def test_retry_logs_delete_remote_and_prune(s: Sora, quick: FakeProc) -> None:
    bad = s.ok("submit", "something forbidden").strip()
    assert finished(s, bad)["status"] == "failed"
    events = [json.loads(x) for x in s.ok("logs", bad, "--json").splitlines()]
    assert events[0]["kind"] == "created" and events[-1]["to_status"] == "failed"
    assert "moderation" in s.ok("logs", bad)
    again = s.ok("retry", bad).strip()
    assert s.job(again)["retry_of"] == bad
    assert finished(s, again)["status"] == "failed"
    assert quick.stats()["creates_by_prompt"]["something forbidden"] == 2
    (third,) = s.ok("retry", "--failed", "-q").split()  # `bad` was retried already
    assert s.job(third)["retry_of"] == again
    assert finished(s, third)["status"] == "failed"

    good = s.ok("submit", "a keeper").strip()
    done = finished(s, good)
    r = s.run("delete", good)  # not a terminal, no --yes
    assert r.returncode == 2 and "add --yes" in r.stderr
    assert s.ok("delete", good, "--remote", "--yes").strip() == good
    assert seen(quick, done["remote_id"])["deleted"] is True
    assert s.run("status", good).returncode == 3
    assert not Path(done["output_path"]).exists()

    def prunable() -> list[str]:
        return s.ok("prune", "--older-than", "1s", "--dry-run", "-q").split()

    wait_for(lambda: bad in prunable(), 10, "the failed job to be older than 1 s")
    listed = prunable()
    assert s.ok("prune", "--older-than", "1s", "--yes").split() == listed
    assert bad not in s.ok("list", "-q", "--all").split()


def test_delete_remote_of_a_running_job_exits_2(tmp_path: Path) -> None:
    slow = start_fake("--job-seconds", "30", "--poll-after-ms", "100")
    try:
        s = Sora(tmp_path / "h", make_env(tmp_path / "h", slow.base_url), tmp_path)
        job_id = s.ok("submit", "a slow one").strip()
        wait_job(s, job_id, lambda j: j["status"] == "running", 15, "the job to run")
        r = s.run("delete", job_id, "--remote", "--yes")
        assert r.returncode == 2 and r.stdout == ""
        assert "completed or failed" in r.stderr and len(r.stderr.splitlines()) == 1
        assert s.job(job_id)["status"] == "running"
        assert slow.stats()["requests_by_route"].get("delete", 0) == 0
        s.ok("cancel", job_id)
        s.stop_runner()
    finally:
        stop_proc(slow.proc)


def test_import_a_video_made_elsewhere_and_download_it(s: Sora, quick: FakeProc) -> None:
    body = json.dumps({"prompt": "made by another tool", "size": "1280x720",
                       "seconds": "8"}).encode()
    request = urllib.request.Request(quick.base_url + "/videos", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {TEST_KEY}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        video_id = json.loads(answer.read())["id"]
    job_id = s.ok("import", video_id).strip()
    job = s.job(job_id)
    assert (job["remote_id"], job["prompt"], job["size"], job["seconds"]) == (
        video_id, "made by another tool", "1280x720", 8)
    out = s.ok("wait", job_id, "--download").strip()
    assert sha256_of(s.cwd / out) == quick.sha256(video_id)
    assert quick.stats()["creates"] == 1  # adopted, never created again
    r = s.run("import", "--remote-list")
    assert r.returncode == 0 and r.stdout == "" and "already in the store" in r.stderr
    assert s.run("import", "video_0123456789abcdef0123456789abcdef").returncode == 3
    assert "imported" in s.ok("logs", job_id)
