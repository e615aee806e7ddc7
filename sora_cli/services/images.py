"""The image reference of a job (`--image`): checked, optionally fitted, kept in SORA_HOME.

A URL is sent as it is (the JSON object form `{"image_url": ...}`). A file must be a
JPEG, PNG or WebP by its bytes (its name does not matter) whose pixel size equals the
requested `size`: the server refuses any other size ("Inpaint image must match the
requested width and height"). The size is read from the file's headers here (PNG
IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X), so checking needs no imaging library; only
`fit=True` (resize and centre-crop to the size) needs Pillow, the `image` extra.

The checked (or fitted) bytes are copied to `SORA_HOME/inputs/<sha256>.<ext>` and the
job keeps that path, so it survives the original being moved or edited.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sora_cli.errors import InvalidInput, StoreError

MAX_IMAGE_BYTES: Final = 64 * 1024 * 1024
INSTALL_HINT: Final = "pip install 'sora-cli[image]'"
_URL: Final = re.compile(r"https?://\S+", re.IGNORECASE)
_SIZE: Final = re.compile(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})")
# JPEG start-of-frame markers (baseline, progressive, lossless...): not DHT, JPG or DAC.
_SOF: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7,
                         0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_FORMATS: Final = {  # kind: (file extension, content type, Pillow format)
    "jpeg": ("jpg", "image/jpeg", "JPEG"),
    "png": ("png", "image/png", "PNG"),
    "webp": ("webp", "image/webp", "WEBP"),
}


@dataclass(frozen=True)
class ImageInfo:
    kind: str  # "jpeg", "png" or "webp"
    width: int
    height: int

    @property
    def ext(self) -> str:
        return _FORMATS[self.kind][0]

    @property
    def mime(self) -> str:
        return _FORMATS[self.kind][1]

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


def is_url(ref: str) -> bool:
    return _URL.fullmatch(ref) is not None


def sniff(data: bytes) -> str | None:
    """"jpeg", "png" or "webp" from the first bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def image_info(data: bytes) -> ImageInfo | None:
    """The kind and pixel size of a JPEG, PNG or WebP image, or None if it is not one."""
    kind = sniff(data)
    if kind is None:
        return None
    size = {"png": _png_size, "jpeg": _jpeg_size, "webp": _webp_size}[kind](data)
    if size is None or min(size) <= 0:
        return None
    return ImageInfo(kind, *size)


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2  # after SOI
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None  # not at a marker: damaged
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame
            return None
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if marker in _SOF:
            if length < 7 or pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def parse_size(size: str) -> tuple[int, int]:
    match = _SIZE.fullmatch(size)
    if match is None:
        raise InvalidInput(f"--size must look like WIDTHxHEIGHT (got {size!r})")
    return int(match[1]), int(match[2])


def read_image(path: Path, shown: str) -> tuple[bytes, ImageInfo]:
    """The bytes and facts of an image file; InvalidInput (one line) when it is not one."""
    try:
        if path.is_dir():
            raise InvalidInput(f"image {shown} is a directory")
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise InvalidInput(f"image {shown} is larger than {MAX_IMAGE_BYTES >> 20} MiB")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"image {shown}: no such file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read image {shown}: {exc.strerror or exc}") from None
    kind = sniff(data)
    if kind is None:
        raise InvalidInput(f"{shown} is not a JPEG, PNG or WebP image")
    info = image_info(data)
    if info is None:
        raise InvalidInput(f"{shown} looks like a {kind.upper()} image but its size "
                           "cannot be read (damaged or truncated?)")
    return data, info


def require_pillow() -> None:
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise InvalidInput(f"--fit needs Pillow: {INSTALL_HINT}") from None


def fit_image(data: bytes, info: ImageInfo, width: int, height: int) -> bytes:
    """Resize (cover) and centre-crop to exactly width x height, same format (Pillow)."""
    require_pillow()
    import io

    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened) or opened
            fitted = ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)
            if info.kind == "jpeg" and fitted.mode not in ("RGB", "L"):
                fitted = fitted.convert("RGB")
            out = io.BytesIO()
            fitted.save(out, format=_FORMATS[info.kind][2], quality=95)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"cannot resize the image: {exc}") from None
    return out.getvalue()


def store_input(data: bytes, ext: str, home: Path) -> Path:
    """Keep `data` as home/inputs/<sha256>.<ext> (0600 in a 0700 dir); returns the path."""
    import hashlib  # here: `sora --help` would pay 5 ms for it
    inputs = home / "inputs"
    inputs.mkdir(mode=0o700, parents=True, exist_ok=True)
    dest = inputs / f"{hashlib.sha256(data).hexdigest()}.{ext}"
    if dest.is_file() and dest.stat().st_size == len(data):
        return dest  # content-addressed: the same bytes are already kept
    tmp = inputs / f".{dest.name}.{os.getpid()}.partial"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def prepare_image(ref: str, *, size: str, fit: bool, home: Path) -> str:
    """What a job keeps as its image: the URL as given, or the path of a checked copy.

    Raises InvalidInput (exit 2) for a file that is missing, not a JPEG/PNG/WebP, or
    not `size` pixels (unless `fit`); nothing is written then.
    """
    if is_url(ref):
        if fit:
            raise InvalidInput("--fit needs an image file, not a URL")
        return ref
    width, height = parse_size(size)
    if fit:
        require_pillow()  # the same answer whether or not this image needed fitting
    data, info = read_image(Path(ref).expanduser(), ref)
    if (info.width, info.height) != (width, height):
        if not fit:
            raise InvalidInput(
                f"image {ref} is {info.size} but the video is {size}: the server would refuse "
                "it (\"Inpaint image must match the requested width and height\"); resize it, "
                "or add --fit to resize and crop it")
        data = fit_image(data, info, width, height)
    try:
        return str(store_input(data, info.ext, home))
    except OSError as exc:
        raise StoreError(f"cannot keep a copy of image {ref} in {home / 'inputs'}: "
                         f"{exc.strerror or exc}") from None
