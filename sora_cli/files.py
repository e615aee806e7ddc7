"""Writing files in directories others may share, safely.

- A temp file has a random name and is created with ``O_CREAT|O_EXCL|O_NOFOLLOW``
  (0600): a link planted at a guessable name (``.<name>.<pid>.partial``) is never
  written through, and a file someone else owns is never truncated.
- The final name is created exclusively (a hard link, or ``O_EXCL``) unless replacing
  was asked for: a file that appeared there meanwhile is never overwritten.
- A copy is hashed as it is written, and checked against the sha256 it must have.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import Any, BinaryIO, Final

from sora_cli.errors import ContentMismatch, InvalidInput

TEMP_SUFFIX: Final = ".partial"
MAX_IMAGE_BYTES: Final = 64 * 1024 * 1024  # an --image file
_CREATE: Final = (os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                  | getattr(os, "O_CLOEXEC", 0))
_READ: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_BLOCK: Final = 1024 * 1024


def read_regular_file(path: Path, cap: int) -> bytes:
    """A regular file's bytes, at most `cap`: opened without blocking (a FIFO would wait
    for a writer), refused unless it is a regular file (OSError EINVAL: /dev/zero never
    ends), read no further than the cap (EFBIG; the file may grow meanwhile)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        data = f.read(cap + 1)
    if len(data) > cap:
        raise OSError(errno.EFBIG, f"larger than {cap >> 20} MiB", str(path))
    return data


def temp_name(dest: Path) -> Path:
    """A fresh, unguessable temp name next to `dest`."""
    return dest.with_name(f".{dest.name}.{secrets.token_hex(8)}{TEMP_SUFFIX}")


def create_temp(dest: Path) -> tuple[Path, int]:
    """A new private temp file next to `dest`: (its path, an fd open for reading and
    writing). Never an existing file, never through a link."""
    for _ in range(8):
        path = temp_name(dest)
        try:
            return path, os.open(path, _CREATE, 0o600)
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, "cannot create a temp file", str(dest.parent))


def remove_stale_temps(dest: Path) -> None:
    """Remove the temp files an earlier (killed) writer left for `dest`: regular files
    or links named like ours; a link is removed itself, never followed."""
    prefix = f".{dest.name}."
    with contextlib.suppress(OSError):
        for entry in os.scandir(dest.parent):
            if entry.name.startswith(prefix) and entry.name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    if not stat.S_ISDIR(entry.stat(follow_symlinks=False).st_mode):
                        os.unlink(entry.path)


def publish(tmp: Path, dest: Path, *, replace: bool) -> None:
    """Give the complete temp file its final name. Without `replace`, `dest` must not
    exist (InvalidInput, exit 2, when it appeared meanwhile)."""
    try:
        if replace:
            os.replace(tmp, dest)
            return
        try:
            os.link(tmp, dest)  # atomic, and fails if anything is at dest
        except FileExistsError:
            raise
        except OSError as exc:  # a file system without hard links (FAT, some shares)
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                                 errno.EMLINK, errno.ENOSYS):
                raise
            _copy_exclusive(tmp, dest)
    except FileExistsError:
        raise InvalidInput(f"{dest} exists; use --force to overwrite it") from None
    finally:
        tmp.unlink(missing_ok=True)


def _copy_exclusive(src: Path, dest: Path) -> None:
    fd = os.open(dest, _CREATE & ~os.O_RDWR | os.O_WRONLY, 0o600)
    try:
        with open(src, "rb") as source, os.fdopen(fd, "wb", closefd=False) as target:
            while block := source.read(_BLOCK):
                target.write(block)
            target.flush()
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        dest.unlink(missing_ok=True)
        raise
    os.close(fd)


def write_private(dest: Path, data: bytes, *, replace: bool = True) -> None:
    """`data` at `dest` (0600), all or nothing, through a private temp file."""
    tmp, fd = create_temp(dest)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    publish(tmp, dest, replace=replace)


def copy_checked(src: Path, dest: Path, *, replace: bool, sha256: str | None) -> None:
    """Copy `src` (never through a link) to `dest` through a private temp file, checking
    the copy's sha256 when one is given: ContentMismatch, and nothing written, when the
    bytes are not the recorded ones."""
    reader = os.fdopen(os.open(src, _READ), "rb")
    digest = hashlib.sha256()
    with reader:
        tmp, fd = create_temp(dest)
        try:
            _copy_into(reader, fd, digest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    if sha256 is not None and digest.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise ContentMismatch(f"{src} does not have the sha256 recorded for it (changed or "
                              "replaced since it was saved)")
    publish(tmp, dest, replace=replace)


def _copy_into(reader: BinaryIO, fd: int, digest: Any) -> None:
    with os.fdopen(fd, "wb") as out:
        while block := reader.read(_BLOCK):
            digest.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())

