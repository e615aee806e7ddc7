"""Issue 13, files: nothing overwritten without --force, no write through a link planted
in a shared directory, inputs that are not regular files, saved copies re-checked, and
no orphan file when a job is deleted while its video is saved."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from .conftest import MakeFake, MakeSora
from .harness import (
    CRASH_ENV,
    SORA,
    Sora,
    quick_fake,
    runner_pid,
    wait_for,
    wait_job,
)

pytestmark = pytest.mark.e2e
PNG_720 = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (720).to_bytes(4, "big")
           + (1280).to_bytes(4, "big") + b"\x08\x02\x00\x00\x00" + bytes(64))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def exec_with_link(s: Sora, link: str, target: Path, *args: str,
                   input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run sora with a symbolic link planted at `link`, where `$$` is sora's own pid (the
    shell execs sora), as another user of a shared directory could guess it."""
    script = f'ln -s {shlex.quote(str(target))} "{link}" && exec {SORA} ' + " ".join(
        shlex.quote(a) for a in args)
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, input=input,
                          env=s.env, cwd=s.cwd, timeout=60)


def completed_job(s: Sora, prompt: str) -> dict[str, object]:
    job_id = s.ok("submit", prompt).strip()
    return wait_job(s, job_id, lambda j: j["status"] == "completed", 60)


# -- point 9: the final file is created exclusively; the temp file is nobody else's ----------


def test_download_never_replaces_a_file_that_appeared_meanwhile(make_fake: MakeFake,
                                                                make_sora: MakeSora) -> None:
    # four 64 KiB blocks, 300 ms apart: time to put a file there meanwhile
    fake = make_fake("--job-seconds", "0.3", "--poll-after-ms", "100", "--video-bytes", "262144")
    s = make_sora(fake)
    job = completed_job(s, "fetched slowly")
    s.stop_runner()
    (s.home / "videos" / f"{job['id']}.mp4").unlink()  # `download` fetches from the API
    theirs = s.cwd / "out.mp4.partial"
    theirs.write_bytes(b"someone's partial file")
    fake.faults({"action": "slow", "route": "content", "delay_ms": 300})
    proc = subprocess.Popen([SORA, "download", str(job["id"]), "-o", "out.mp4"], env=s.env,
                            cwd=s.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: fake.stats()["faults_pending"] == 0, 20, "the download to start")
    (s.cwd / "out.mp4").write_bytes(b"the user's own file")  # meanwhile
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "exists" in err, err
    assert (s.cwd / "out.mp4").read_bytes() == b"the user's own file"
    assert theirs.read_bytes() == b"someone's partial file"
    assert sorted(p.name for p in s.cwd.iterdir()) == ["out.mp4", "out.mp4.partial"]


# -- point 10: links planted where sora writes its temp files ----------------------------------


def test_copies_never_write_through_a_planted_link(make_fake: MakeFake, make_sora: MakeSora,
                                                   tmp_path: Path) -> None:
    fake = quick_fake(make_fake)
    s = make_sora(fake)
    job = completed_job(s, "copied into a shared dir")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    shared = s.cwd / "shared"
    shared.mkdir()
    r = exec_with_link(s, f"shared/.{job['id']}.mp4.$$.partial", victim,
                       "download", str(job["id"]), "-o", "shared/")
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "precious"
    assert sha(shared / f"{job['id']}.mp4") == job["sha256"]


def test_kept_images_never_write_through_a_planted_link(make_fake: MakeFake,
                                                        make_sora: MakeSora,
                                                        tmp_path: Path) -> None:
    fake = quick_fake(make_fake)
    s = make_sora(fake)
    s.ok("list")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    image = s.cwd / "frame.png"
    image.write_bytes(PNG_720)
    (s.home / "inputs").mkdir(mode=0o700)
    digest = hashlib.sha256(PNG_720).hexdigest()
    r = exec_with_link(s, f"{s.home}/inputs/.{digest}.png.$$.partial", victim,
                       "submit", "an image", "--image", "frame.png")
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "precious"
    assert (s.home / "inputs" / f"{digest}.png").read_bytes() == PNG_720


# -- point 15: --image reads regular files only, and at most the cap ---------------------------


def test_image_that_is_not_a_regular_file_is_refused_at_once(make_fake: MakeFake,
                                                             make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    s = make_sora(fake)
    fifo = s.cwd / "pipe.png"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        r = s.run("submit", "an image", "--image", path, timeout=20)
        assert r.returncode == 2, r.stderr
        assert "not a regular file" in r.stderr and len(r.stderr.splitlines()) == 1
    assert s.ok("list", "-q") == ""


# -- point 15: the copy path of download re-checks sha256 --------------------------------------


def test_a_saved_copy_that_changed_is_not_handed_out(make_fake: MakeFake,
                                                     make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    s = make_sora(fake)
    job = completed_job(s, "tampered with")
    saved = Path(str(job["output_path"]))
    data = bytearray(saved.read_bytes())
    data[100] ^= 0xFF  # same size, different bytes
    saved.write_bytes(bytes(data))
    r = s.run("download", str(job["id"]), "-o", "copy.mp4")
    assert r.returncode == 0, r.stderr
    assert "sha256" in r.stderr  # said why it fetched the video again
    assert sha(s.cwd / "copy.mp4") == job["sha256"]


# -- point 15: delete between the runner's rename and its COMPLETED step -----------------------


def test_delete_after_the_file_is_in_place_leaves_no_orphan(make_fake: MakeFake,
                                                            make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    s = make_sora(fake, **{CRASH_ENV: "before_complete"})  # the runner dies right there
    job_id = s.ok("submit", "deleted at the worst moment").strip()
    saved = s.home / "videos" / f"{job_id}.mp4"
    wait_for(saved.exists, 30, "the video to be in place")
    wait_for(lambda: not runner_pid(s), 10, "the runner to die")
    s.ok("delete", job_id, "--yes", env={CRASH_ENV: ""})
    assert not saved.exists()
    assert not list((s.home / "videos").iterdir())
