"""Kling's request token: an HS256 JWT of the access key, signed with the secret key.

The API reference's sample signs ``{"iss": <access key>, "exp": now + 1800, "nbf": now -
5}`` with headers ``{"alg": "HS256", "typ": "JWT"}`` (PyJWT); this builds the same bytes
with the standard library (compact JSON, PyJWT's key order), so no JWT package is
needed. The adapter signs a fresh one every few minutes (adapter.py: `KlingApi.token`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Final

LIFETIME: Final = 1800  # seconds, as the reference's sample
EARLY: Final = 5  # valid from 5 s ago: a little clock skew is forgiven


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def kling_token(access_key: str, secret_key: str, now: float) -> str:
    seconds = int(now)
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":"),
                               sort_keys=True).encode())
    payload = b64url(json.dumps({"iss": access_key, "exp": seconds + LIFETIME,
                                 "nbf": seconds - EARLY}, separators=(",", ":")).encode())
    signature = hmac.new(secret_key.encode(), f"{header}.{payload}".encode("ascii"),
                         hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"
