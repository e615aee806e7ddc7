"""The Videos contract client's settings, from sora's settings (the `openai` provider)."""

from __future__ import annotations

from sora_cli.config import Settings
from sora_cli.providers.openai.types import ApiSettings


def api_settings(settings: Settings) -> ApiSettings:
    return ApiSettings(
        base_url=settings.base_url, api_key=settings.api_key or "",
        auth_style="azure" if settings.auth_style == "azure" else "bearer",
        organization=settings.organization, project=settings.project,
        timeout=settings.request_timeout, max_retries=settings.max_retries,
        ca_bundle=settings.ca_bundle,
    )
