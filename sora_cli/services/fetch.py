"""The bridge from settings to the API client, and the one-off fetch `sora download` uses
when the runner did not save a video."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sora_cli.config import Settings
from sora_cli.errors import InvalidInput
from sora_cli.providers.client import ApiSettings, VideosClient
from sora_cli.providers.download import download_to


def api_settings(settings: Settings) -> ApiSettings:
    return ApiSettings(
        base_url=settings.base_url, api_key=settings.api_key or "",
        auth_style="azure" if settings.auth_style == "azure" else "bearer",
        organization=settings.organization, project=settings.project,
        timeout=settings.request_timeout, max_retries=settings.max_retries,
        ca_bundle=settings.ca_bundle,
    )


def fetch_video(settings: Settings, remote_id: str, dest: Path, *,
                variant: str = "video") -> None:
    from sora_cli.services.context import require_key

    require_key(settings)
    if dest.is_symlink():  # never write through a link, nor replace one unasked
        raise InvalidInput(f"{dest} is a symbolic link; remove it or choose another path")

    async def go() -> None:
        async with VideosClient(api_settings(settings)) as client:
            await download_to(client, remote_id, dest, variant=variant)

    asyncio.run(go())
