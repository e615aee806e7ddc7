"""`sora import PROVIDER:ID`: adopt jobs made elsewhere on a provider that can look a
job up by its id (Replicate), as `running` jobs the runner waits on and saves.

The OpenAI contract's ids (and `--remote-list`) are imported by remote.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sora_cli.config import Settings
from sora_cli.domain.catalogue import find_model
from sora_cli.domain.providers import BUILTIN, IMPORT, valid_provider_name
from sora_cli.errors import ApiError, InvalidInput, JobNotFound
from sora_cli.services.context import Context, require_key
from sora_cli.services.providers import can
from sora_cli.store.housekeeping import RemoteVideo

if TYPE_CHECKING:
    from sora_cli.providers.base import Looked


def split_ref(ref: str, settings: Settings | None = None) -> tuple[str, str]:
    """`PROVIDER:ID` -> (provider, id), for a provider that can import (a named endpoint:
    `omni:gemini::operations/abc`, the id being everything after the first colon)."""
    provider, _, remote = ref.partition(":")
    info = BUILTIN.get(provider)
    able = (IMPORT in info.capabilities if info is not None
            else settings is not None and valid_provider_name(provider)
            and bool(can(settings, provider, IMPORT)))
    if not able or provider == "openai" or not remote:
        able_ones = [n for n, i in BUILTIN.items() if IMPORT in i.capabilities and n != "openai"]
        raise InvalidInput(f"cannot import {ref[:140]!r}: give an OpenAI-contract video id, or "
                           f"PROVIDER:ID for {', '.join(able_ones)} or a named endpoint "
                           f"({provider} cannot look a job up by its id)")
    return provider, remote


def lookup_all(ctx: Context, refs: Sequence[str]) -> list[RemoteVideo]:
    """Every named job, fetched before anything is recorded (an unknown one: exit 3)."""
    wanted = [split_ref(r, ctx.settings) for r in dict.fromkeys(refs)]
    for provider in dict.fromkeys(p for p, _ in wanted):
        require_key(ctx.settings, provider)
    return asyncio.run(_lookups(ctx, wanted))


async def _lookups(ctx: Context, wanted: list[tuple[str, str]]) -> list[RemoteVideo]:
    from sora_cli.providers.base import LooksUp
    from sora_cli.providers.registry import Adapters

    out: list[RemoteVideo] = []
    async with Adapters(ctx.settings) as adapters:
        for provider, remote in wanted:
            adapter = adapters.get(provider)
            assert isinstance(adapter, LooksUp)
            try:
                looked = await adapter.lookup(remote)
            except ApiError as exc:
                if exc.http_status == 404:
                    raise JobNotFound(f"no {provider} job {remote[:140]} (or it was deleted); "
                                      "nothing imported") from None
                raise
            out.append(_record(provider, looked))
    return out


def _record(provider: str, looked: Looked) -> RemoteVideo:
    params = dict(looked.params or {})
    info = find_model(provider, looked.model)
    seconds = 0
    if info is not None and info.seconds is not None:
        value = str(params.get(info.seconds.field, "")).removesuffix("s")
        seconds = int(value) if value.isascii() and value.isdigit() and len(value) < 6 else 0
    p = looked.polled
    handle = {**(looked.handle or {}), **({"result": p.result} if p.result else {})}
    return RemoteVideo(
        remote_id=looked.remote_id, prompt=looked.prompt, model=looked.model, size="",
        seconds=seconds, remote_status=p.remote_status, progress=p.progress or 0,
        submitted_at=looked.submitted_at, expires_at=p.expires_at, provider=provider,
        params=params or None, remote_handle=handle or None)
