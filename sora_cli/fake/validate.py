"""Create and remix requests of the fake Videos API server, checked as the real service
does: a bad field is a 400 with the error envelope."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from sora_cli.fake.body import FilePart
from sora_cli.fake.errors import ApiFailure

MAX_PROMPT: Final = 32000
SECONDS: Final = ("4", "8", "12")
SORA2_SIZES: Final = ("720x1280", "1280x720")
PRO_SIZES: Final = (*SORA2_SIZES, "1024x1792", "1792x1024")
REFERENCE_KEYS: Final = ("image_url", "file_id")
CREATE_KEYS: Final = frozenset(
    {"prompt", "model", "seconds", "size", "input_reference"}
    | {f"input_reference[{key}]" for key in REFERENCE_KEYS}
)


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
    from sora_cli.fake.pictures import picture

    info = picture(part.data)
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


def validate_create(fields: dict[str, object], *, extra: frozenset[str] = frozenset(),
                    numeric_seconds: bool = False) -> CreateRequest:
    """A create's fields checked; ``extra`` fields a dialect takes besides the contract's
    (vLLM-Omni's ``width``, ``fps``...), ``numeric_seconds``: ``seconds`` may be a
    number (gateways)."""
    _reject_unknown(fields, CREATE_KEYS | extra)
    seconds_value = fields.get("seconds")
    if numeric_seconds and isinstance(seconds_value, int) and not isinstance(
            seconds_value, bool):
        fields = {**fields, "seconds": str(seconds_value)}
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
