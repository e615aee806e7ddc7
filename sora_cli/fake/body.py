"""Request bodies of the fake Videos API server, parsed into one flat field mapping.

Bodies arrive as JSON, multipart/form-data (the official SDK always sends multipart for
create) or urlencoded forms; all three become a mapping of fields, with file parts as
`FilePart` values, which `sora_cli.fake.validate` then checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from urllib.parse import parse_qsl


class BodyError(ValueError):
    """A request body that cannot be parsed as its content type says."""


@dataclass(frozen=True)
class FilePart:
    filename: str
    content_type: str
    data: bytes


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
