"""The body of `POST /api/task` and `POST /api/jobs`, turned into a checked request.

Fields: `prompt` (required), `model`, `seconds`, `size`, `label`, `params`; what is left
out (or null) comes from the config, as on the command line. The checks and their
messages are the CLI's own (`check_request`), so a bad request reads the same here as in
a terminal. An image is not taken: a path in a request must never name a file here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from sora_cli.config import Settings
from sora_cli.domain.batch import check_request
from sora_cli.domain.jobs import VideoRequest, parse_seconds
from sora_cli.errors import InvalidInput

FIELDS: Final = ("prompt", "model", "seconds", "size", "label", "params")

# For the OpenAPI schema only (the checks above are the ones that run).
SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["prompt"],
    "additionalProperties": False,
    "properties": {
        "prompt": {"type": "string", "description": "What the video shows."},
        "model": {"type": "string", "description": "Model or deployment name [config]."},
        "seconds": {"type": ["integer", "string"], "enum": [4, 8, 12, "4", "8", "12"]},
        "size": {"type": "string", "example": "1280x720"},
        "label": {"type": ["string", "null"], "description": "Free text to group jobs by."},
        "params": {"type": ["object", "null"],
                   "description": "Extra input fields for the provider (none take any yet)."},
    },
}


def parse_request(data: Any, settings: Settings) -> VideoRequest:
    """A checked request from the decoded JSON body; InvalidInput (422) naming the fault."""
    if not isinstance(data, dict):
        raise InvalidInput("the body must be one JSON object with a \"prompt\"")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    if not isinstance(data.get("prompt"), str):
        raise InvalidInput("\"prompt\" is required and must be a string")
    if data.get("params"):  # {} and null mean none
        raise InvalidInput("\"params\": no provider of this sora takes extra parameters yet")
    req = VideoRequest(prompt=data["prompt"], model=settings.model, size=settings.size,
                       seconds=parse_seconds(settings.seconds))
    fields: dict[str, Any] = {}
    for key in ("model", "size", "label"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{key!r} must be a string (got {value!r})")
        if value is not None:
            fields[key] = value
    seconds = data.get("seconds")
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | str):
            raise InvalidInput(f"\"seconds\" must be 4, 8 or 12 (got {seconds!r})")
        fields["seconds"] = parse_seconds(seconds)
    return check_request(replace(req, **fields))
