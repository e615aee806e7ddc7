"""The body of `POST /api/task` and `POST /api/jobs`, turned into a checked request.

Fields: `prompt` (required), `model` (`PROVIDER:MODEL`, an alias, or an OpenAI-contract
name), `seconds`, `size`, `label`, `params` (the model's own input fields, as `--param`);
what is left out (or null) comes from the config and the model, as on the command
line. The checks and their messages are the CLI's own (`resolve`, `check_request`), so a
bad request reads the same here as in a terminal. An image is not taken: a path in a
request must never name a file here.
"""

from __future__ import annotations

from typing import Any, Final

from sora_cli.config import Settings
from sora_cli.domain.batch import check_request
from sora_cli.domain.jobs import VideoRequest
from sora_cli.domain.models import Draft, check_params, parse_whole_seconds, resolve
from sora_cli.errors import InvalidInput
from sora_cli.services.providers import request_defaults

FIELDS: Final = ("prompt", "model", "seconds", "size", "label", "params")

# For the OpenAPI schema only (the checks above are the ones that run).
SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["prompt"],
    "additionalProperties": False,
    "properties": {
        "prompt": {"type": "string", "description": "What the video shows."},
        "model": {"type": "string", "description": "PROVIDER:MODEL, an alias or an "
                  "OpenAI-contract model name [config]; `sora models` lists them."},
        "seconds": {"type": ["integer", "string"], "description": "A length the model "
                    "takes (sora-2: 4, 8 or 12)."},
        "size": {"type": "string", "example": "1280x720"},
        "label": {"type": ["string", "null"], "description": "Free text to group jobs by."},
        "params": {"type": ["object", "null"],
                   "description": "The model's own input fields, sent as given (over what "
                   "seconds and size map to)."},
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
    params = data.get("params")
    if params is not None and not isinstance(params, dict):
        raise InvalidInput(f"\"params\" must be a JSON object (got {params!r})"[:200])
    fields: dict[str, Any] = {}
    for key in ("model", "size", "label"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{key!r} must be a string (got {value!r})")
        fields[key] = value
    seconds = data.get("seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | str)):
        raise InvalidInput(f"\"seconds\" must be a whole number (got {seconds!r})")
    draft = Draft(data["prompt"], model=fields["model"], size=fields["size"],
                  label=fields["label"], params=check_params(params or {}, "\"params\""),
                  seconds=None if seconds is None else parse_whole_seconds(seconds))
    # the CLI's own defaults: named endpoints' dialects and plug-ins resolve the same way
    return check_request(resolve(draft, request_defaults(settings)))
