"""The async client of the Videos API (OpenAI contract; Azure v1 and gateways too).

The calls of the contract over the shared HTTP machinery (providers/http.py: pools,
the retry loop with the SDK's rules, answers). Creates (``create`` and ``remix``,
which both start a billed job) are only re-sent when the request provably never
reached the server or was refused without effect; any other failure raises
AmbiguousCreate at once, for the caller to reconcile.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from sora_cli.errors import AmbiguousCreate, ApiError, InvalidInput
from sora_cli.providers.content import ContentStream
from sora_cli.providers.endpoint import Body, ImageFile, Multipart
from sora_cli.providers.http import HttpApi
from sora_cli.providers.openai.types import (
    ApiSettings,
    Video,
    VideoPage,
    id_segment,
    valid_video_id,
)
from sora_cli.providers.outcome import ambiguous
from sora_cli.providers.wire import Answer, Attempt, OnAttempt

__all__ = [
    "Answer", "ApiSettings", "Attempt", "ContentStream", "ImageFile", "OnAttempt", "Video",
    "VideoPage", "VideosClient", "valid_video_id",
]


class VideosClient(HttpApi):
    _settings: ApiSettings

    def common_headers(self) -> dict[str, str]:
        headers = super().common_headers()
        if self._settings.organization:
            headers["OpenAI-Organization"] = self._settings.organization
        if self._settings.project:
            headers["OpenAI-Project"] = self._settings.project
        return headers

    async def auth_headers(self) -> dict[str, str]:
        if not self._settings.api_key:  # a named endpoint without a key: no auth header
            return {}
        if self._settings.auth_style == "azure":
            return {"api-key": self._settings.api_key}
        return {"Authorization": f"Bearer {self._settings.api_key}"}

    async def __aenter__(self) -> VideosClient:
        return self

    # -- public calls ---------------------------------------------------------------

    async def create(self, *, prompt: str, model: str, size: str, seconds: int,
                     image_url: str | None = None, image_file: ImageFile | None = None,
                     extra: Mapping[str, Any] | None = None,
                     on_attempt: OnAttempt | None = None, multipart: bool = False,
                     seconds_number: bool = False) -> Answer[Video]:
        """Start a video. An image reference goes as a multipart file part
        (``image_file``: name, bytes, content type) or as the JSON object form
        ``input_reference: {"image_url": ...}`` (``input_reference[image_url]`` in a
        multipart form). ``extra`` fields (`--param`) go along, over the others. An
        empty ``size`` or a ``seconds`` of 0 is left out (the server's default).
        ``multipart`` sends a form even without a file; ``seconds_number`` sends
        ``seconds`` as a JSON number (gateways that want one)."""
        if not prompt.strip():
            raise InvalidInput("the prompt is empty")
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
            raise InvalidInput(f"seconds must be a positive whole number, not {seconds!r}")
        fields: dict[str, Any] = {"prompt": prompt, "model": model}
        if size:
            fields["size"] = size
        if seconds:
            fields["seconds"] = seconds if seconds_number else str(seconds)
        fields.update(extra or {})
        body: Body = fields
        if image_file is not None or multipart:
            form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
            if image_url is not None:
                form["input_reference[image_url]"] = image_url
            files = {"input_reference": image_file} if image_file is not None else {}
            body = Multipart(form, files)
        elif image_url is not None:
            body = {**fields, "input_reference": {"image_url": image_url}}
        return await self._video("POST", "/videos", body=body, on_attempt=on_attempt, billed=True)

    async def retrieve(self, video_id: str, *, on_attempt: OnAttempt | None = None
                       ) -> Answer[Video]:
        return await self._video("GET", f"/videos/{_checked(video_id)}", on_attempt=on_attempt)

    async def remix(self, video_id: str, prompt: str, *, on_attempt: OnAttempt | None = None
                    ) -> Answer[Video]:
        if not prompt.strip():
            raise InvalidInput("the prompt is empty")
        path = f"/videos/{_checked(video_id)}/remix"
        return await self._video("POST", path, body={"prompt": prompt},
                                 on_attempt=on_attempt, billed=True)

    async def list_page(self, *, limit: int = 100, order: str = "desc", after: str | None = None,
                        on_attempt: OnAttempt | None = None,
                        extra: Mapping[str, str] | None = None) -> Answer[VideoPage]:
        """One page of the list; ``extra`` query parameters go along (a gateway's
        ``custom_llm_provider``)."""
        if not 0 <= limit <= 100 or order not in ("asc", "desc"):
            raise InvalidInput("list needs 0 <= limit <= 100 and order 'asc' or 'desc'")
        params = {**(extra or {}), "limit": str(limit), "order": order} | (
            {"after": after} if after else {})
        data, headers = await self._call("GET", "/videos", params=params, on_attempt=on_attempt)
        return self._answer(VideoPage.from_json(data), headers)

    async def iter_recent(self, *, max_pages: int = 10, on_attempt: OnAttempt | None = None
                          ) -> AsyncIterator[Video]:
        """Videos newest first, following the ``after`` cursor for up to ``max_pages`` pages."""
        after: str | None = None
        for _ in range(max_pages):
            page = (await self.list_page(after=after, on_attempt=on_attempt)).value
            for video in page.data:
                yield video
            cursor = page.last_id or (page.data[-1].id if page.data else None)
            if not page.has_more or cursor is None or cursor == after:
                return
            after = cursor

    async def delete(self, video_id: str, *, on_attempt: OnAttempt | None = None
                     ) -> Answer[bool]:
        path = f"/videos/{_checked(video_id)}"
        data, headers = await self._call("DELETE", path, on_attempt=on_attempt)
        deleted = data.get("deleted", True)  # an empty answer (204) is a done delete
        return self._answer(deleted is True, headers)

    def stream_content(self, video_id: str, *, variant: str = "video", offset: int = 0
                       ) -> contextlib.AbstractAsyncContextManager[ContentStream]:
        """One GET of the bytes (no retry here: download.py owns retrying downloads)."""
        path = f"/videos/{_checked(video_id)}/content"
        if variant not in ("video", "thumbnail", "spritesheet") or offset < 0:
            raise InvalidInput(f"invalid content variant {variant!r} or offset {offset}")
        return self.open_stream(path, offset=offset, params={"variant": variant})

    # -- machinery --------------------------------------------------------------------

    async def _video(self, method: str, path: str, *, body: Body | None = None,
                     on_attempt: OnAttempt | None, billed: bool = False) -> Answer[Video]:
        data, headers = await self._call(method, path, body=body, on_attempt=on_attempt,
                                         billed=billed)
        try:
            video = Video.from_json(data)
        except ApiError as exc:
            if billed:  # a success answer (2xx) that describes no usable video
                raise AmbiguousCreate(ambiguous(exc.message), http_status=200,
                                      request_id=headers.get("x-request-id")) from exc
            raise
        return self._answer(video, headers)


def _checked(video_id: str) -> str:
    """The id as one path segment of a URL (never anything else)."""
    if not valid_video_id(video_id):
        raise InvalidInput(f"invalid video id {video_id[:140]!r}")
    return id_segment(video_id)
