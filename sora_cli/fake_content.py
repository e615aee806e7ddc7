"""Payloads of the fake Videos API server: bytes served, request bodies parsed and checked.

Content is deterministic per (video id, variant, size) and generated block by block, so
that a 1 GiB "video" is streamed (and hashed for `expected_sha256`) without ever being
held in memory. Each block is one fixed pseudo-random block derived from the id, with
the block number written over its first 8 bytes; a small file header (and for JPEG a
trailer) is laid over the result so the bytes look like what they claim to be.

Request bodies arrive as JSON, multipart/form-data (the official SDK always sends
multipart for create) or urlencoded forms; all three become one flat field mapping,
which `validate_create` checks as the real service does (400 with the error envelope).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from typing import Final
from urllib.parse import parse_qsl

BLOCK_SIZE: Final = 64 * 1024

CONTENT_TYPES: Final[dict[str, str]] = {
    "video": "video/mp4",
    "thumbnail": "image/webp",
    "spritesheet": "image/jpeg",
}
PREVIEW_SIZES: Final[dict[str, int]] = {"thumbnail": 16 * 1024, "spritesheet": 48 * 1024}


class BodyError(ValueError):
    """A request body that cannot be parsed as its content type says."""


@dataclass(frozen=True)
class FilePart:
    filename: str
    content_type: str
    data: bytes


def content_size(variant: str, video_bytes: int) -> int:
    return video_bytes if variant == "video" else PREVIEW_SIZES[variant]


def _overlays(variant: str, size: int) -> list[tuple[int, bytes]]:
    """(offset, bytes) pieces laid over the pseudo-random stream."""
    if variant == "video":
        ftyp = struct.pack(">I", 32) + b"ftypisom" + struct.pack(">I", 0x200)
        ftyp += b"isomiso2avc1mp41"
        mdat_size = size - len(ftyp)
        mdat = struct.pack(">I", mdat_size if 8 <= mdat_size < 2**32 else 0) + b"mdat"
        return [(0, ftyp + mdat)]
    if variant == "thumbnail":
        riff = b"RIFF" + struct.pack("<I", max(size - 8, 0)) + b"WEBP"
        return [(0, riff + b"VP8 " + struct.pack("<I", max(size - 20, 0)))]
    jfif = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return [(0, jfif), (max(size - 2, len(jfif)), b"\xff\xd9")]


def _base_block(video_id: str, variant: str) -> bytes:
    return hashlib.shake_256(f"sora-fake:{video_id}:{variant}".encode()).digest(BLOCK_SIZE)


def iter_content(
    video_id: str, variant: str, size: int, start: int = 0, end: int | None = None
) -> Iterator[bytes]:
    """Yield bytes [start, end) of the content, at most one block per chunk."""
    stop = size if end is None else min(end, size)
    base = _base_block(video_id, variant)
    overlays = _overlays(variant, size)
    pos = start
    while pos < stop:
        index, offset = divmod(pos, BLOCK_SIZE)
        block_start = index * BLOCK_SIZE
        block = bytearray(index.to_bytes(8, "big") + base[8:])
        for at, data in overlays:
            lo, hi = max(at, block_start), min(at + len(data), block_start + BLOCK_SIZE)
            if lo < hi:
                block[lo - block_start : hi - block_start] = data[lo - at : hi - at]
        take = min(BLOCK_SIZE - offset, stop - pos)
        yield bytes(block[offset : offset + take])
        pos += take


def content_sha256(video_id: str, variant: str, size: int) -> str:
    digest = hashlib.sha256()
    for chunk in iter_content(video_id, variant, size):
        digest.update(chunk)
    return digest.hexdigest()


def _header_message(raw: str) -> Message:
    message = Message()
    message["content-type"] = raw
    return message


def parse_body(content_type: str, body: bytes) -> dict[str, object]:
    """Fields of a request body; file parts become `FilePart` values."""
    media = _header_message(content_type).get_content_type() if content_type else ""
    if media == "multipart/form-data":
        boundary = _header_message(content_type).get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise BodyError("multipart/form-data without a boundary")
        return parse_multipart(body, boundary)
    if media == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError as error:
        raise BodyError(f"We could not parse the JSON body of your request. ({error})") from None
    if not isinstance(value, dict):
        raise BodyError("The JSON body of your request must be an object.")
    return value


def parse_multipart(body: bytes, boundary: str) -> dict[str, object]:
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    fields: dict[str, object] = {}
    pieces = (b"\r\n" + body).split(delimiter)
    if len(pieces) < 2:
        raise BodyError("multipart body without any part")
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            return fields
        head, found, data = piece.partition(b"\r\n\r\n")
        if not found:
            raise BodyError("multipart part without a header block")
        headers = BytesHeaderParser().parsebytes(head.lstrip(b"\r\n") + b"\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise BodyError("multipart part without a name")
        filename = headers.get_filename()
        if filename is None:
            fields[name] = data.decode("utf-8", "replace")
        else:
            kind = headers.get_content_type() if headers["content-type"] else ""
            fields[name] = FilePart(filename, kind or "application/octet-stream", data)
    raise BodyError("multipart body without a closing boundary")


# -- errors and validation

ERROR_TYPES: Final[dict[int, str]] = {401: "invalid_request_error", 429: "requests"}
FAULT_MESSAGES: Final[dict[int, str]] = {
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The server is overloaded or not ready yet.",
}
MAX_PROMPT: Final = 32000
SECONDS: Final = ("4", "8", "12")
SORA2_SIZES: Final = ("720x1280", "1280x720")
PRO_SIZES: Final = (*SORA2_SIZES, "1024x1792", "1792x1024")
REFERENCE_KEYS: Final = ("image_url", "file_id")
CREATE_KEYS: Final = frozenset(
    {"prompt", "model", "seconds", "size", "input_reference"}
    | {f"input_reference[{key}]" for key in REFERENCE_KEYS}
)


class ApiFailure(Exception):
    """An HTTP error answer, rendered with the 4-key error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def envelope(self) -> dict[str, object]:
        kind = ERROR_TYPES.get(self.status)
        if kind is None:
            kind = "server_error" if self.status >= 500 else "invalid_request_error"
        error = {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        return {"error": error}


def fault_failure(status: int, retry_after_ms: int | None, text: str | None = None
                  ) -> ApiFailure:
    """The answer of an injected error, with retry hints when a delay is given."""
    headers: dict[str, str] = {}
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
        headers["retry-after"] = str(max(1, math.ceil(retry_after_ms / 1000)))
    message = text or FAULT_MESSAGES.get(status, f"Injected fault (HTTP {status}).")
    code = "rate_limit_exceeded" if status == 429 else None
    return ApiFailure(status, message, code=code, headers=headers)


@dataclass(frozen=True)
class CreateRequest:
    prompt: str
    model: str
    seconds: str
    size: str
    reference: dict[str, object] | None = None  # what input_reference was received


def _describe_file(part: FilePart, size: str) -> dict[str, object]:
    """A received image file part, checked against the requested size as the real
    service does. Bytes that are no JPEG/PNG/WebP at all are let through (lenient)."""
    from sora_cli.images import image_info

    info = image_info(part.data)
    if info is not None and info.size != size:
        raise _invalid("input_reference",
                       "Inpaint image must match the requested width and height")
    return {
        "kind": "file", "filename": part.filename, "content_type": part.content_type,
        "bytes": len(part.data), "sha256": hashlib.sha256(part.data).hexdigest(),
        "image": info.kind if info else None, "width": info.width if info else None,
        "height": info.height if info else None,
    }


def _invalid(param: str, message: str, code: str = "invalid_value") -> ApiFailure:
    return ApiFailure(400, message, param=param, code=code)


def _string(fields: dict[str, object], key: str, default: str) -> str:
    value = fields.get(key, default)
    if isinstance(value, str):
        return value
    kind = "an integer" if isinstance(value, int) else f"a {type(value).__name__}"
    raise _invalid(
        key, f"Invalid type for '{key}': expected a string, but got {kind} instead.", "invalid_type"
    )


def _check_prompt(fields: dict[str, object]) -> str:
    if "prompt" not in fields:
        raise _invalid(
            "prompt", "Missing required parameter: 'prompt'.", "missing_required_parameter"
        )
    prompt = _string(fields, "prompt", "")
    if not prompt:
        raise _invalid(
            "prompt",
            "Invalid 'prompt': empty string. Expected a string with "
            "minimum length 1, but got an empty string instead.",
            "empty_string",
        )
    if len(prompt) > MAX_PROMPT:
        raise _invalid(
            "prompt",
            f"Invalid 'prompt': string too long. Expected a string with "
            f"maximum length {MAX_PROMPT}, but got a string with length "
            f"{len(prompt)} instead.",
            "string_above_max_length",
        )
    return prompt


def _reject_unknown(fields: dict[str, object], known: frozenset[str]) -> None:
    for key in fields:
        if key not in known:
            raise _invalid(
                key, f"Unrecognized request argument supplied: {key}", "unknown_parameter"
            )


def allowed_sizes(model: str) -> tuple[str, ...] | None:
    """Sizes a model accepts; None for a model this fake does not know (any WxH)."""
    if model.startswith("sora-2-pro"):
        return PRO_SIZES
    return SORA2_SIZES if model.startswith("sora-2") else None


def _supported(values: tuple[str, ...]) -> str:
    quoted = [f"'{value}'" for value in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _check_seconds(fields: dict[str, object], model: str) -> str:
    seconds = _string(fields, "seconds", "4")
    known_model = allowed_sizes(model) is not None
    if known_model and seconds not in SECONDS:
        raise _invalid(
            "seconds", f"Invalid value: '{seconds}'. Supported values are: {_supported(SECONDS)}."
        )
    if not known_model and (not seconds.isdigit() or int(seconds) == 0):
        raise _invalid(
            "seconds", f"Invalid value: '{seconds}'. Expected a whole number of seconds."
        )
    return seconds


def _check_size(fields: dict[str, object], model: str) -> str:
    size = _string(fields, "size", "720x1280")
    allowed = allowed_sizes(model)
    if allowed is not None and size not in allowed:
        raise _invalid(
            "size", f"Invalid value: '{size}'. Supported values are: {_supported(allowed)}."
        )
    if allowed is None and not re.fullmatch(r"[1-9]\d*x[1-9]\d*", size):
        raise _invalid("size", f"Invalid value: '{size}'. Expected WIDTHxHEIGHT.")
    return size


def _check_reference(fields: dict[str, object], size: str) -> dict[str, object] | None:
    value = fields.get("input_reference")
    flat = {
        key: fields[f"input_reference[{key}]"]
        for key in REFERENCE_KEYS
        if f"input_reference[{key}]" in fields
    }
    if value is None and not flat:
        return None
    if value is not None and flat:
        raise _invalid(
            "input_reference", "Give input_reference either as a file or as an object, not both."
        )
    if isinstance(value, FilePart):
        if not value.data:
            raise _invalid("input_reference", "The input_reference file is empty.")
        return _describe_file(value, size)
    if value is not None and not isinstance(value, dict):
        raise _invalid(
            "input_reference",
            "Invalid type for 'input_reference': expected a file or an object.",
            "invalid_type",
        )
    reference: dict[str, object] = value if isinstance(value, dict) else flat
    unknown = set(reference) - set(REFERENCE_KEYS)
    if unknown or len(reference) != 1:
        raise _invalid(
            "input_reference", "input_reference must have exactly one of 'image_url' or 'file_id'."
        )
    ((key, given),) = reference.items()
    if not isinstance(given, str) or not given:
        raise _invalid("input_reference", "input_reference needs a non-empty string.")
    return {"kind": key, key: given}


def validate_create(fields: dict[str, object]) -> CreateRequest:
    _reject_unknown(fields, CREATE_KEYS)
    prompt = _check_prompt(fields)
    model = _string(fields, "model", "sora-2")
    if not model:
        raise _invalid("model", "Invalid 'model': empty string.", "empty_string")
    seconds = _check_seconds(fields, model)
    size = _check_size(fields, model)
    reference = _check_reference(fields, size)
    return CreateRequest(prompt, model, seconds, size, reference)


def validate_remix(fields: dict[str, object]) -> str:
    _reject_unknown(fields, frozenset({"prompt"}))
    return _check_prompt(fields)
