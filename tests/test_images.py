"""images.py: the kind and pixel size read from the bytes (no Pillow), the checks of
`prepare_image`, the kept copy under SORA_HOME/inputs, and `--fit` with and without
Pillow."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import sys
from pathlib import Path

import pytest
from clirun import sora
from inproc import run_runner, settings_for

from sora_cli.domain.images import image_info, sniff
from sora_cli.domain.jobs import Job, JobStatus, VideoRequest
from sora_cli.errors import InvalidInput
from sora_cli.fake.server import FakeServer
from sora_cli.services.images import prepare_image
from sora_cli.store.repository import Store


def png_bytes(w: int, h: int) -> bytes:
    """A PNG's signature and IHDR: enough for the header parser (no pixel data)."""
    ihdr = struct.pack(">II5B", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0"


def jpeg_bytes(w: int, h: int, sof: int = 0xC0) -> bytes:
    """SOI, a JFIF APP0, an EXIF-like APP1 and fill bytes before the frame header."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 300) + b"Exif\0\0" + b"\0" * 294
    frame = struct.pack(">BHHB", 8, h, w, 3) + b"\x01\x11\x00\x02\x11\x01\x03\x11\x01"
    sof_seg = bytes([0xFF, sof]) + struct.pack(">H", 2 + len(frame)) + frame
    return b"\xff\xd8" + app0 + app1 + b"\xff" + sof_seg + b"\xff\xd9"


def webp_bytes(w: int, h: int, chunk: str) -> bytes:
    if chunk == "VP8 ":
        body = b"\x30\x01\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", w, h) + b"\0" * 10
    elif chunk == "VP8L":
        body = b"\x2f" + struct.pack("<I", (w - 1) | ((h - 1) << 14)) + b"\0" * 10
    else:
        body = b"\x10\0\0\0" + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    data = chunk.encode() + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(data)) + b"WEBP" + data


@pytest.mark.parametrize(("data", "kind", "size"), [
    (png_bytes(720, 1280), "png", "720x1280"),
    (jpeg_bytes(1280, 720), "jpeg", "1280x720"),
    (jpeg_bytes(1792, 1024, sof=0xC2), "jpeg", "1792x1024"),  # progressive
    (webp_bytes(1024, 1792, "VP8 "), "webp", "1024x1792"),
    (webp_bytes(720, 1280, "VP8L"), "webp", "720x1280"),
    (webp_bytes(1280, 720, "VP8X"), "webp", "1280x720"),
])
def test_kind_and_size_from_the_headers(data: bytes, kind: str, size: str) -> None:
    info = image_info(data)
    assert info is not None and (info.kind, info.size) == (kind, size)


@pytest.mark.parametrize("data", [
    b"", b"hello", b"GIF89a" + b"\0" * 20,  # not a kind we take
    b"\x89PNG\r\n\x1a\n",  # a PNG cut short
    b"\xff\xd8\xff\xda\0\x02",  # scan data before any frame header
    b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0",  # WebP without its frame
])
def test_what_is_no_readable_image(data: bytes) -> None:
    assert image_info(data) is None


@pytest.mark.parametrize(("fmt", "options"), [
    ("PNG", {}), ("JPEG", {}), ("JPEG", {"progressive": True}),
    ("WEBP", {}), ("WEBP", {"lossless": True}), ("WEBP", {"mode": "RGBA"}),
])
def test_sizes_agree_with_pillow(fmt: str, options: dict[str, object]) -> None:
    image_mod = pytest.importorskip("PIL.Image")
    mode = str(options.pop("mode", "RGB"))
    out = io.BytesIO()
    image_mod.new(mode, (37, 21), "red").save(out, format=fmt, **options)
    info = image_info(out.getvalue())
    assert info is not None and (info.width, info.height) == (37, 21)
    assert info.kind == fmt.lower()


def test_a_url_is_kept_as_given(tmp_path: Path) -> None:
    url = "https://example.com/ref.png?sig=1"
    assert prepare_image(url, size="720x1280", fit=False, home=tmp_path) == url
    assert not (tmp_path / "inputs").exists()


def test_a_file_is_copied_content_addressed_and_private(tmp_path: Path) -> None:
    src = tmp_path / "ref.png"
    src.write_bytes(png_bytes(720, 1280))
    kept = Path(prepare_image(str(src), size="720x1280", fit=False, home=tmp_path / "home"))
    assert kept.parent == tmp_path / "home" / "inputs" and kept.suffix == ".png"
    assert kept.read_bytes() == src.read_bytes()
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    assert oct(kept.parent.stat().st_mode & 0o777) == "0o700"
    src.unlink()  # the job keeps its own copy
    assert kept.is_file()
    src.write_bytes(png_bytes(720, 1280))
    again = prepare_image(str(src), size="720x1280", fit=False, home=tmp_path / "home")
    assert Path(again) == kept  # the same bytes are kept once


def test_a_png_name_holding_a_jpeg_is_taken_by_its_bytes(tmp_path: Path) -> None:
    src = tmp_path / "photo.png"
    src.write_bytes(jpeg_bytes(720, 1280))
    kept = Path(prepare_image(str(src), size="720x1280", fit=False, home=tmp_path))
    assert kept.suffix == ".jpg"
    assert sniff(kept.read_bytes()) == "jpeg"


def test_a_wrong_size_is_refused_naming_both_sizes(tmp_path: Path) -> None:
    src = tmp_path / "small.png"
    src.write_bytes(png_bytes(640, 480))
    with pytest.raises(InvalidInput) as err:
        prepare_image(str(src), size="720x1280", fit=False, home=tmp_path / "home")
    text = str(err.value)
    assert "640x480" in text and "720x1280" in text and "--fit" in text
    assert "Inpaint image must match" in text and "\n" not in text
    assert not (tmp_path / "home").exists()  # nothing kept


@pytest.mark.parametrize(("content", "expected"), [
    (b"just some text, not an image", "is not a JPEG, PNG or WebP image"),
    (b"\x89PNG\r\n\x1a\n", "size cannot be read"),
    (None, "no such file"),
])
def test_files_that_are_no_usable_image(tmp_path: Path, content: bytes | None,
                                        expected: str) -> None:
    src = tmp_path / "ref.png"
    if content is not None:
        src.write_bytes(content)
    with pytest.raises(InvalidInput, match=expected):
        prepare_image(str(src), size="720x1280", fit=False, home=tmp_path / "home")
    with pytest.raises(InvalidInput, match="is a directory"):
        prepare_image(str(tmp_path), size="720x1280", fit=False, home=tmp_path / "home")
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_fit_resizes_and_crops_with_pillow(tmp_path: Path, fmt: str) -> None:
    image_mod = pytest.importorskip("PIL.Image")
    src = tmp_path / "wide"
    image_mod.new("RGBA" if fmt == "PNG" else "RGB", (400, 300), "blue").save(src, format=fmt)
    kept = prepare_image(str(src), size="720x1280", fit=True, home=tmp_path / "home")
    info = image_info(Path(kept).read_bytes())
    assert info is not None and info.size == "720x1280" and info.kind == fmt.lower()


def test_fit_without_pillow_says_how_to_install_it(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)  # `import PIL` raises ImportError
    src = tmp_path / "small.png"
    src.write_bytes(png_bytes(640, 480))
    with pytest.raises(InvalidInput, match=r"pip install 'sora-cli\[image\]'"):
        prepare_image(str(src), size="720x1280", fit=True, home=tmp_path / "home")
    # checking alone never needs Pillow
    src.write_bytes(png_bytes(720, 1280))
    assert os.path.isfile(prepare_image(str(src), size="720x1280", fit=False, home=tmp_path))


def test_fit_needs_a_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="--fit needs an image file"):
        prepare_image("https://example.com/a.png", size="720x1280", fit=True, home=tmp_path)


# --- `sora submit --image` (CliRunner) and the runner sending it (the fake on loopback) ---


def recorded(home: Path) -> list[Job]:
    if not (home / "sora.db").exists():
        return []
    with Store.open(home / "sora.db") as st:
        return st.list_jobs(limit=None)


@pytest.mark.parametrize(("content", "expected"), [
    (png_bytes(640, 480), "is 640x480 but the video is 720x1280"),
    (b"GIF89a not for us", "is not a JPEG, PNG or WebP image"),
    (None, "no such file"),
])
def test_submit_with_a_bad_image_exits_2_and_records_nothing(
        home: Path, tmp_path: Path, content: bytes | None, expected: str) -> None:
    src = tmp_path / "ref.png"
    if content is not None:
        src.write_bytes(content)
    r = sora("submit", "a fox", "--image", str(src))
    assert r.exit_code == 2 and r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert line.startswith("sora: ") and expected in line
    assert recorded(home) == []
    assert not (home / "inputs").exists() or not any((home / "inputs").iterdir())


def test_submit_keeps_a_checked_copy_of_a_jpeg_named_png(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "ref.png"
    src.write_bytes(jpeg_bytes(1280, 720))
    r = sora("submit", "a fox", "--image", str(src), "--size", "1280x720")
    assert r.exit_code == 0, r.stderr
    (job,) = recorded(home)
    assert job.image is not None and Path(job.image).parent == home / "inputs"
    assert job.image.endswith(".jpg") and Path(job.image).read_bytes() == src.read_bytes()


def test_the_runner_uploads_a_file_and_sends_a_url_as_the_object_form(
        tmp_path: Path, server: FakeServer) -> None:
    src = tmp_path / "photo.png"
    src.write_bytes(jpeg_bytes(720, 1280))  # a JPEG under a .png name
    kept = prepare_image(str(src), size="720x1280", fit=False, home=tmp_path)
    store = Store.open(tmp_path / "sora.db")
    url = "https://example.com/ref.webp"
    by_file, by_url = store.add_jobs([VideoRequest("from a file", image=kept),
                                      VideoRequest("from a url", image=url)])
    run_runner(settings_for(tmp_path, server), store)
    seen = {}
    for job in (by_file, by_url):
        done = store.get(job.id)
        assert done is not None and done.status is JobStatus.COMPLETED, done
        seen[job.id] = server.backend.inspect(str(done.remote_id))["input_reference"]
    assert seen[by_file.id] == {
        "kind": "file", "filename": Path(kept).name, "content_type": "image/jpeg",
        "bytes": src.stat().st_size, "sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
        "image": "jpeg", "width": 720, "height": 1280}
    assert seen[by_url.id] == {"kind": "image_url", "image_url": url}


def test_a_job_whose_kept_image_vanished_fails_without_sending(
        tmp_path: Path, server: FakeServer) -> None:
    store = Store.open(tmp_path / "sora.db")
    (job,) = store.add_jobs([VideoRequest("lost", image=str(tmp_path / "inputs/gone.png"))])
    run_runner(settings_for(tmp_path, server), store)
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.FAILED
    assert done.error is not None and done.error.code == "image_missing"
    assert server.create_count() == 0


def test_the_fake_refuses_a_reference_of_the_wrong_size(server: FakeServer) -> None:
    import httpx

    files = {"input_reference": ("a.png", png_bytes(640, 480), "image/png")}
    r = httpx.post(server.base_url + "/videos", data={"prompt": "p"}, files=files,
                   headers={"Authorization": "Bearer k"})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Inpaint image must match the requested width and height"
    assert server.create_count() == 0
