"""Signed result URLs on the fake's CDN origin, as Runway's task outputs and MiniMax's
download URLs are: they carry an expiry and a signature, and the CDN refuses them once
the expiry has passed (403, as a signed storage URL does), so a client must ask the API
for a fresh one. `url_seconds` sets how long they last."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from typing import Final

from sora_cli.fake.errors import ApiFailure

_SECRET: Final = os.urandom(16)
SIGNED_FAMILIES: Final = ("runway", "minimax")


def _signature(job_id: str, expires: int) -> str:
    return hmac.new(_SECRET, f"{job_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def signed_url(cdn_url: str, job_id: str, lifetime: float) -> str:
    expires = int(time.time() + lifetime)
    return (f"{cdn_url}/cdn/{job_id}.mp4?Expires={expires}"
            f"&Signature={_signature(job_id, expires)}")


def check_signed(job_id: str, query: dict[str, str]) -> None:
    """A 403 for a missing, forged or expired signature."""
    expires = query.get("Expires", "")
    given = query.get("Signature", "")
    if not expires.isdigit() or not hmac.compare_digest(given, _signature(job_id, int(expires))):
        raise ApiFailure(403, "AccessDenied: the signature does not match")
    if time.time() >= int(expires):
        raise ApiFailure(403, "AccessDenied: Request has expired")
