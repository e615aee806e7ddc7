"""sora_echo: a sora provider plug-in for the Echo render API (an example; its fake is
fake.py). `POST /renders {"text", ...}` starts a render, `GET /renders/{id}` says
`working`, `done` (with `file`) or `failed`; the file is served under `/files/`."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import quote

from sora_cli.domain.jobs import Job, JobError
from sora_cli.errors import AmbiguousCreate
from sora_cli.providers import Created, CreateRequest, PluginConfig, Polled, RemoteState
from sora_cli.providers.content import ContentStream
from sora_cli.providers.endpoint import EndpointSettings
from sora_cli.providers.http import HttpApi
from sora_cli.providers.wire import OnAttempt

capabilities: frozenset[str] = frozenset()  # no list: an unanswered create is never re-sent
key_env = "ECHO_KEY"
description = "the Echo render API (example plug-in)"
models = ("echo-1",)
STATES = {"working": RemoteState.RUNNING, "done": RemoteState.COMPLETED,
          "failed": RemoteState.FAILED}


def make(config: PluginConfig, **http: Any) -> EchoProvider:
    endpoint = EndpointSettings(config.base_url or "http://127.0.0.1:8700", config.api_key or "",
                                config.timeout, config.max_retries, config.ca_bundle)
    return EchoProvider(config.name, HttpApi(endpoint, **http))


class EchoProvider:
    capabilities = capabilities

    def __init__(self, name: str, api: HttpApi) -> None:
        self.name, self.api = name, api

    async def create(self, request: CreateRequest, *, on_attempt: OnAttempt) -> Created:
        body = {"text": request.job.prompt, "model": request.job.model,
                **(request.job.params or {})}
        answer = await self.api.call("POST", "/renders", body=body, on_attempt=on_attempt,
                                     billed=True)  # billed: never re-sent after it may land
        render_id = answer.value.get("id")
        if not isinstance(render_id, str) or not render_id.isalnum():
            raise AmbiguousCreate("the Echo API accepted the render but sent no usable id")
        return Created(render_id)

    async def poll(self, job: Job, *, on_attempt: OnAttempt) -> Polled:
        answer = await self.api.call("GET", f"/renders/{quote(job.remote_id or '', safe='')}",
                                     on_attempt=on_attempt)
        word = str(answer.value.get("state"))[:32]
        state = STATES.get(word, RemoteState.RUNNING)
        file = answer.value.get("file")
        error = JobError("echo_failed", str(answer.value.get("error"))[:200]) \
            if state is RemoteState.FAILED else None
        result = file if isinstance(file, str) and file.startswith("/files/") else None
        return Polled(state, word, error=error, result=result)

    def open_result(self, job: Job, *, variant: str = "video", offset: int = 0
                    ) -> AbstractAsyncContextManager[ContentStream]:
        return self.api.open_stream(self.result_path(job), offset=offset)

    def result_path(self, job: Job, variant: str = "video") -> str:
        return str((job.remote_handle or {}).get("result", ""))

    def where(self, job: Job) -> str:
        return f"POST {self.api.base_url}/renders"

    async def aclose(self) -> None:
        await self.api.aclose()
