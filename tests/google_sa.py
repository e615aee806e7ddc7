"""A Google service account for tests: an RSA key made here (cryptography), written as
the JSON file Application Default Credentials read, its `token_uri` at the fake."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EMAIL = "sora-tests@sora-e2e.iam.gserviceaccount.com"


@functools.cache
def _key() -> tuple[str, int, int]:
    """One 2048-bit key per test process (making one takes a moment)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    numbers = key.public_key().public_numbers()
    return pem, numbers.n, numbers.e


@dataclass(frozen=True)
class ServiceAccount:
    path: Path
    email: str
    n: int
    e: int

    @property
    def registration(self) -> dict[str, Any]:
        """The body of the fake's POST /_fake/google-keys."""
        return {"client_email": self.email, "n": str(self.n), "e": self.e}


def service_account(where: Path, token_uri: str, project: str = "sora-e2e") -> ServiceAccount:
    pem, n, e = _key()
    path = where / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": project, "private_key_id": "k1",
        "private_key": pem, "client_email": EMAIL, "client_id": "100000000000000000001",
        "token_uri": token_uri}))
    path.chmod(0o600)
    return ServiceAccount(path, EMAIL, n, e)
