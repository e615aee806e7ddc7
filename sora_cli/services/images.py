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

import errno
from pathlib import Path
from typing import Final

from sora_cli.domain.images import FORMATS, ImageInfo, image_info, is_url, parse_size, sniff
from sora_cli.errors import InvalidInput, StoreError
from sora_cli.files import MAX_IMAGE_BYTES, read_regular_file

INSTALL_HINT: Final = "pip install 'sora-cli[image]'"
__all__ = ["MAX_IMAGE_BYTES", "prepare_image", "read_image", "store_input"]


def read_image(path: Path, shown: str) -> tuple[bytes, ImageInfo]:
    """The bytes and facts of an image file; InvalidInput (one line) when it is not one.
    A regular file only, read no further than MAX_IMAGE_BYTES (/dev/zero never ends, a
    FIFO would wait for a writer)."""
    try:
        data = read_regular_file(path, MAX_IMAGE_BYTES)
    except FileNotFoundError:
        raise InvalidInput(f"image {shown}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"image {shown} is a directory") from None
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            raise InvalidInput(f"image {shown} is not a regular file (a device, a pipe...)"
                               ) from None
        if exc.errno == errno.EFBIG:
            raise InvalidInput(f"image {shown} is larger than {MAX_IMAGE_BYTES >> 20} MiB"
                               ) from None
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
            fitted.save(out, format=FORMATS[info.kind][2], quality=95)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"cannot resize the image: {exc}") from None
    return out.getvalue()


def store_input(data: bytes, ext: str, home: Path) -> Path:
    """Keep `data` as home/inputs/<sha256>.<ext> (0600 in a 0700 dir); returns the path.
    The name is the record of the bytes: the runner checks them against it."""
    import hashlib  # here: `sora --help` would pay 5 ms for it

    from sora_cli.files import write_private

    inputs = home / "inputs"
    inputs.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()
    dest = inputs / f"{digest}.{ext}"
    try:
        if hashlib.sha256(read_regular_file(dest, MAX_IMAGE_BYTES)).hexdigest() == digest:
            return dest  # content-addressed: the same bytes are already kept
    except OSError:
        pass
    write_private(dest, data)  # a random temp name, O_EXCL|O_NOFOLLOW: no planted link
    return dest


def prepare_image(ref: str, *, size: str | None, fit: bool, home: Path) -> str:
    """What a job keeps as its image: the URL as given, or the path of a checked copy.

    Raises InvalidInput (exit 2) for a file that is missing, not a JPEG/PNG/WebP, or
    not `size` pixels (unless `fit`; no `size`: any size); nothing is written then.
    """
    if is_url(ref):
        if fit:
            raise InvalidInput("--fit needs an image file, not a URL")
        return ref
    if size is None:
        data, info = read_image(Path(ref).expanduser(), ref)
        return _kept(data, info, ref, home)
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
    return _kept(data, info, ref, home)


def _kept(data: bytes, info: ImageInfo, ref: str, home: Path) -> str:
    try:
        return str(store_input(data, info.ext, home))
    except OSError as exc:
        raise StoreError(f"cannot keep a copy of image {ref} in {home / 'inputs'}: "
                         f"{exc.strerror or exc}") from None
