"""The URL map of the fake Videos API: which route (and video) a request is for."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote

from sora_cli.fake.errors import ApiFailure

_VIDEO_PATH: Final = re.compile(r"/v1/videos/([^/]+)(/content|/remix)?")
_VIDEO_ROUTES: Final = {
    ("GET", ""): "retrieve",
    ("DELETE", ""): "delete",
    ("GET", "/content"): "content",
    ("POST", "/remix"): "remix",
}


def resolve(method: str, path: str) -> tuple[str, str]:
    """(route, video id) of an API request; 404 for anything else."""
    route: str | None = None
    video_id = ""
    if path == "/v1/videos":
        route = {"POST": "create", "GET": "list"}.get(method)
    elif match := _VIDEO_PATH.fullmatch(path):
        video_id = unquote(match[1])  # an id is one percent-encoded segment
        route = _VIDEO_ROUTES.get((method, match[2] or ""))
    if route is None:
        raise ApiFailure(404, f"Invalid URL ({method} {path})")
    return route, video_id


def route_name(method: str, path: str) -> str:
    """The route a logged request went to ("create", "retrieve"...), or "other"."""
    try:
        return resolve(method, path)[0]
    except ApiFailure:
        return "other"
