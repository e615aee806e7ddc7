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
from waits import wait_until

from .harness import TEST_KEY, FakeProc, MakeFake, MakeSora, Sora

pytestmark = pytest.mark.e2e


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


def test_image_upload_remix_and_variants(make_sora: MakeSora, fake: FakeProc) -> None:
    sora = make_sora(fake, SORA_SAVE_THUMBNAILS="1")
    (sora.cwd / "ref.png").write_bytes(jpeg(1280, 720))  # a JPEG under a .png name
    r = sora.run("submit", "a harbour at dawn", "--image", "ref.png", "--size", "1280x720")
    assert r.returncode == 0, r.stderr
    src_id = r.stdout.strip()
    (sora.cwd / "ref.png").unlink()  # the job kept its own copy
    src = finished(sora, src_id)
    assert src["status"] == "completed", src
    ref = seen(fake, src["remote_id"])["input_reference"]
    assert ref["kind"] == "file" and ref["content_type"] == "image/jpeg"
    assert ref["sha256"] == hashlib.sha256(jpeg(1280, 720)).hexdigest()
    # save_thumbnails: the runner kept the thumbnail next to the video
    assert src["thumbnail_path"] == str(sora.home / "videos" / f"{src_id}.webp")
    assert sha256_of(Path(src["thumbnail_path"])) == variant_sha(fake, src["remote_id"],
                                                                  "thumbnail")

    remix_id = sora.ok("remix", src_id[:5], "the same harbour at night").strip()
    out = sora.ok("wait", remix_id, "--download", "-o", "clips/").strip()
    remix = sora.job(remix_id)
    assert remix["remix_of"] == src_id and (remix["size"], remix["seconds"]) == ("1280x720", 4)
    assert seen(fake, remix["remote_id"])["remixed_from_video_id"] == src["remote_id"]
    assert sha256_of(sora.cwd / out) == fake.sha256(remix["remote_id"])
    assert f"remixes:        {remix_id}" in sora.ok("status", src_id)
    assert f"remix_of:       {src_id}" in sora.ok("status", remix_id)

    for variant, ext in (("spritesheet", "jpg"), ("thumbnail", "webp"), ("video", "mp4")):
        path = sora.ok("download", remix_id, "--variant", variant, "-o", "v/").strip()
        assert path == f"v/{remix_id}.{ext}"
        assert sha256_of(sora.cwd / path) == variant_sha(fake, remix["remote_id"], variant)
    r = sora.run("download", remix_id, "--variant", "poster")
    assert r.returncode == 2 and r.stdout == "" and "--variant must be one of" in r.stderr

    url = "https://example.com/ref.jpg"
    by_url = sora.ok("submit", "from a url", "--image", url).strip()
    job = finished(sora, by_url)
    assert seen(fake, job["remote_id"])["input_reference"] == {"kind": "image_url",
                                                                "image_url": url}


def test_bad_images_and_remix_of_an_unfinished_job_change_nothing(sora: Sora,
                                                                  fake: FakeProc) -> None:
    (sora.cwd / "small.png").write_bytes(jpeg(640, 480))
    (sora.cwd / "notes.png").write_text("not an image")
    for image, expected in (("small.png", "is 640x480 but the video is 720x1280"),
                            ("notes.png", "is not a JPEG, PNG or WebP image")):
        r = sora.run("submit", "a fox", "--image", image)
        assert r.returncode == 2 and r.stdout == "" and expected in r.stderr
        assert len(r.stderr.splitlines()) == 1
    assert sora.run("list", "-q").stdout == ""
    job_id = sora.ok("submit", "still going").strip()
    r = sora.run("remix", job_id, "again")
    assert r.returncode == 2 and "only a completed job can be remixed" in r.stderr
    assert sora.ok("list", "-q").split() == [job_id]
    assert fake.stats()["creates"] <= 1


def test_retry_logs_delete_remote_and_prune(sora: Sora, fake: FakeProc) -> None:
    bad = sora.ok("submit", "something forbidden").strip()
    assert finished(sora, bad)["status"] == "failed"
    events = [json.loads(x) for x in sora.ok("logs", bad, "--json").splitlines()]
    assert events[0]["kind"] == "created" and events[-1]["to_status"] == "failed"
    assert "moderation" in sora.ok("logs", bad)
    again = sora.ok("retry", bad).strip()
    assert sora.job(again)["retry_of"] == bad
    assert finished(sora, again)["status"] == "failed"
    assert fake.stats()["creates_by_prompt"]["something forbidden"] == 2
    (third,) = sora.ok("retry", "--failed", "-q").split()  # `bad` was retried already
    assert sora.job(third)["retry_of"] == again
    assert finished(sora, third)["status"] == "failed"

    good = sora.ok("submit", "a keeper").strip()
    done = finished(sora, good)
    r = sora.run("delete", good)  # not a terminal, no --yes
    assert r.returncode == 2 and "add --yes" in r.stderr
    assert sora.ok("delete", good, "--remote", "--yes").strip() == good
    assert seen(fake, done["remote_id"])["deleted"] is True
    assert sora.run("status", good).returncode == 3
    assert not Path(done["output_path"]).exists()

    def prunable() -> list[str]:
        return sora.ok("prune", "--older-than", "1s", "--dry-run", "-q").split()

    wait_until(lambda: bad in prunable(), 10, "the failed job to be older than 1 sora")
    listed = prunable()
    assert sora.ok("prune", "--older-than", "1s", "--yes").split() == listed
    assert bad not in sora.ok("list", "-q", "--all").split()


def test_delete_remote_of_a_running_job_exits_2(make_fake: MakeFake,
                                                make_sora: MakeSora) -> None:
    slow = make_fake("--job-seconds", "30", "--poll-after-ms", "100")
    s = make_sora(slow)
    job_id = s.ok("submit", "a slow one").strip()
    wait_until(lambda: s.job(job_id)["status"] == "running", 15, "the job to run")
    r = s.run("delete", job_id, "--remote", "--yes")
    assert r.returncode == 2 and r.stdout == ""
    assert "completed or failed" in r.stderr and len(r.stderr.splitlines()) == 1
    assert s.job(job_id)["status"] == "running"
    assert slow.stats()["requests_by_route"].get("delete", 0) == 0
    s.ok("cancel", job_id)


def test_import_a_video_made_elsewhere_and_download_it(sora: Sora, fake: FakeProc) -> None:
    body = json.dumps({"prompt": "made by another tool", "size": "1280x720",
                       "seconds": "8"}).encode()
    request = urllib.request.Request(fake.base_url + "/videos", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {TEST_KEY}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        video_id = json.loads(answer.read())["id"]
    job_id = sora.ok("import", video_id).strip()
    job = sora.job(job_id)
    assert (job["remote_id"], job["prompt"], job["size"], job["seconds"]) == (
        video_id, "made by another tool", "1280x720", 8)
    out = sora.ok("wait", job_id, "--download").strip()
    assert sha256_of(sora.cwd / out) == fake.sha256(video_id)
    assert fake.stats()["creates"] == 1  # adopted, never created again
    r = sora.run("import", "--remote-list")
    assert r.returncode == 0 and r.stdout == "" and "already in the store" in r.stderr
    assert sora.run("import", "video_0123456789abcdef0123456789abcdef").returncode == 3
    assert "imported" in sora.ok("logs", job_id)
