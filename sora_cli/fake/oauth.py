"""What the fake's Google token endpoint keeps (registered service accounts, issued
access tokens) and its RS256 check; the routes are in google.py. Kept apart so that
the backend (state.py) holds it without importing the routes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Final

_SHA256_INFO: Final = bytes.fromhex("3031300d060960864801650304020105000420")


@dataclass
class GoogleAuth:
    """Registered service accounts and the access tokens issued to them."""

    keys: dict[str, tuple[int, int]] = field(default_factory=dict)  # email -> (n, e)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, email: str, n: int, e: int) -> None:
        with self.lock:
            self.keys[email] = (n, e)

    def issue(self, seconds: float) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.monotonic() + seconds
        return token

    def valid(self, token: str) -> bool:
        with self.lock:
            expiry = self.tokens.get(token)
        return expiry is not None and time.monotonic() < expiry


def rsa_verify(n: int, e: int, message: bytes, signature: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 with SHA-256 (RS256)."""
    size = (n.bit_length() + 7) // 8
    if len(signature) != size or size < 64:
        return False
    decoded = pow(int.from_bytes(signature, "big"), e, n).to_bytes(size, "big")
    info = _SHA256_INFO + hashlib.sha256(message).digest()
    expected = b"\x00\x01" + b"\xff" * (size - len(info) - 3) + b"\x00" + info
    return hmac.compare_digest(decoded, expected)


