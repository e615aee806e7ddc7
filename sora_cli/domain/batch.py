"""Batch input for `sora submit --file`: every line checked before anything is recorded.

Pure rules, no I/O (the caller reads the text). A line is either a prompt, or a JSON
object (a line starting with `{`) with `prompt` and optionally `model`, `size`,
`seconds`, `image`, `label` and `params` (the model's own input fields, as with
`--param`). Blank lines and lines starting with `#` are skipped (a prompt that starts
with `#` is written as JSON). Fields a line leaves out come from the command's options,
then the config. The first bad line fails the whole batch with its line number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from sora_cli.domain.jobs import VideoRequest, validate_request
from sora_cli.domain.models import Draft, check_params, parse_whole_seconds
from sora_cli.errors import InvalidInput

FIELDS: Final = ("prompt", "model", "size", "seconds", "image", "label", "params")
MAX_LABEL_CHARS: Final = 200


@dataclass(frozen=True)
class BatchLine:
    line: int  # 1-based line number in the input
    request: VideoRequest  # `image` is still the reference as written (not yet checked)


def check_label(label: str | None) -> str | None:
    """A label as stored: one printable line of at most MAX_LABEL_CHARS, or None."""
    if label is None:
        return None
    if not label.strip() or len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise InvalidInput(f"--label must be one line of printable text, 1 to "
                           f"{MAX_LABEL_CHARS} characters (got {label[:40]!r})")
    return label


def check_request(req: VideoRequest) -> VideoRequest:
    """Everything the domain checks, plus the label and the image reference's form."""
    if req.provider == "openai":
        req = validate_request(req)  # the others were checked against their model (models.py)
    check_label(req.label)
    if req.image is not None and not req.image.strip():
        raise InvalidInput("--image is empty")
    return req


def parse_batch(text: str, *, defaults: Draft, resolve: Callable[[Draft], VideoRequest],
                source: str) -> list[BatchLine]:
    """Every job of a batch, in input order; InvalidInput naming `source` and the line.

    A line's `params` are laid over the options' (`--param`), key by key."""
    out: list[BatchLine] = []
    for n, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            draft = (_from_json(line, defaults) if line.startswith("{")
                     else replace(defaults, prompt=line))
            out.append(BatchLine(n, check_request(resolve(draft))))
        except InvalidInput as exc:
            raise InvalidInput(f"{source} line {n}: {exc}") from None
    if not out:
        raise InvalidInput(f"{source} has no prompts (blank lines and # comments are skipped)")
    return out


def _from_json(line: str, defaults: Draft) -> Draft:
    import json

    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InvalidInput("a line starting with { must be one JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    if "prompt" not in data:
        raise InvalidInput("a JSON line needs a \"prompt\"")
    fields: dict[str, Any] = {}
    for key, value in data.items():
        if value is None and key != "prompt":
            continue  # null: as if left out
        if key == "seconds":
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise InvalidInput(f"\"seconds\" must be a whole number (got {value!r})")
            fields[key] = parse_whole_seconds(value)
        elif key == "params":
            if not isinstance(value, dict):
                raise InvalidInput(f"\"params\" must be a JSON object (got {value!r})"[:200])
            fields[key] = {**defaults.params, **check_params(value, "\"params\"")}
        elif not isinstance(value, str):
            raise InvalidInput(f"{key!r} must be a string (got {value!r})")
        else:
            fields[key] = value
    return replace(defaults, **fields)
