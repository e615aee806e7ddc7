"""The domain: jobs, their lifecycle and validation, money, batch lines, durations. No I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sora_cli.lazy import lazy_exports

if TYPE_CHECKING:
    from sora_cli.domain.batch import BatchLine, parse_batch
    from sora_cli.domain.catalogue import ModelInfo, Price, find_model, map_request
    from sora_cli.domain.durations import parse_duration
    from sora_cli.domain.jobs import (
        Job,
        JobStatus,
        VideoRequest,
        estimated_cost,
        new_job_id,
        validate_request,
    )
    from sora_cli.domain.models import Defaults, Draft, ModelRef, parse_model_ref, resolve
    from sora_cli.domain.money import check_budget, total_cost
    from sora_cli.domain.providers import ProviderInfo, provider_info
    from sora_cli.domain.text import clean, mask_key, redact

__all__ = [
    "BatchLine", "Defaults", "Draft", "Job", "JobStatus", "ModelInfo", "ModelRef", "Price",
    "ProviderInfo", "VideoRequest", "check_budget", "clean", "estimated_cost", "find_model",
    "map_request", "mask_key", "new_job_id", "parse_batch", "parse_duration",
    "parse_model_ref", "provider_info", "redact", "resolve", "total_cost",
    "validate_request",
]

__getattr__ = lazy_exports(__name__, {
    "BatchLine": "batch",
    "Defaults": "models",
    "Draft": "models",
    "Job": "jobs",
    "JobStatus": "jobs",
    "ModelInfo": "catalogue",
    "ModelRef": "models",
    "Price": "catalogue",
    "ProviderInfo": "providers",
    "VideoRequest": "jobs",
    "check_budget": "money",
    "clean": "text",
    "estimated_cost": "jobs",
    "find_model": "catalogue",
    "map_request": "catalogue",
    "mask_key": "text",
    "new_job_id": "jobs",
    "parse_batch": "batch",
    "parse_duration": "durations",
    "parse_model_ref": "models",
    "provider_info": "providers",
    "redact": "text",
    "resolve": "models",
    "total_cost": "money",
    "validate_request": "jobs",
})
