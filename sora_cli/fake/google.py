"""The fake's Google side, on the second (aux) origin as Google serves it on its own
hosts: the OAuth token endpoint of the service-account flow, and the GCS JSON API's
object download (Vertex's `gcsUri` results).

- ``POST /token`` (a form: ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``,
  ``assertion=<RS256 JWT>``): the assertion is checked as Google does: a registered
  service account as ``iss`` (its public key registered with ``POST
  /_fake/google-keys {"client_email", "n", "e"}``, or `FakeOptions.google_keys`), the
  RS256 signature, ``aud`` = https://oauth2.googleapis.com/token (google-auth always
  sends that, whatever the token URI), a ``scope``, ``iat``/``exp`` at most an hour
  apart around now. Answers ``{"access_token", "expires_in", "token_type": "Bearer"}``
  (``token_seconds`` long), or 400 ``{"error": "invalid_grant", "error_description"}``.
- ``GET /storage/v1/b/{bucket}/o/{object}?alt=media`` (``Authorization: Bearer`` a
  token it issued): the object's bytes (Range works); the object name is one path
  segment, its ``/`` written ``%2F``; without ``alt=media``, the object's metadata.
  Objects are the videos Vertex operations wrote under their ``storageUri``.

RS256 is checked with the standard library (PKCS #1 v1.5 over SHA-256), as the fake
imports nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, unquote

from sora_cli.fake.errors import ApiFailure
from sora_cli.fake.jobs import RemoteJob

if TYPE_CHECKING:
    from sora_cli.fake.http import Handler

AUDIENCE: Final = "https://oauth2.googleapis.com/token"
GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE: Final = "https://www.googleapis.com/auth/cloud-platform"
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


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _grant_error(why: str) -> ApiFailure:
    return ApiFailure(400, why, raw={"error": "invalid_grant", "error_description": why})


def token_endpoint(h: Handler, body: bytes) -> None:
    auth: GoogleAuth = h.server.fake._backend.google
    form = dict(parse_qsl(body.decode("utf-8", "replace")))
    if form.get("grant_type") != GRANT:
        raise ApiFailure(400, "unsupported_grant_type", raw={
            "error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
    h._faults("token", None)
    try:
        head_b64, payload_b64, sig_b64 = form.get("assertion", "").split(".")
        header, claims = json.loads(_b64(head_b64)), json.loads(_b64(payload_b64))
        signature = _b64(sig_b64)
    except (ValueError, TypeError):
        raise _grant_error("Invalid JWT: cannot be decoded.") from None
    if not isinstance(header, dict) or header.get("alg") != "RS256" or \
            not isinstance(claims, dict):
        raise _grant_error("Invalid JWT: the algorithm must be RS256.")
    with auth.lock:
        key = auth.keys.get(str(claims.get("iss")))
    if key is None or not rsa_verify(*key, f"{head_b64}.{payload_b64}".encode(), signature):
        raise _grant_error("Invalid JWT Signature.")
    now = time.time() + h.server.fake.options.clock_offset
    iat, exp = claims.get("iat"), claims.get("exp")
    if claims.get("aud") != AUDIENCE:
        raise _grant_error(f"Invalid JWT: the audience must be {AUDIENCE}.")
    if SCOPE not in str(claims.get("scope", "")).split():
        raise _grant_error("Invalid JWT: no cloud-platform scope.")
    if not isinstance(iat, int) or not isinstance(exp, int) or not (
            iat - 300 <= now < exp and exp - iat <= 3600):
        raise _grant_error("Invalid JWT: Token must be a short-lived token (60 minutes) "
                           "and in a reasonable timeframe.")
    seconds = h.server.fake.options.token_seconds
    h._send_json(200, {"access_token": auth.issue(seconds), "expires_in": int(seconds),
                       "token_type": "Bearer"})


def register_key(h: Handler, body: bytes) -> None:
    """``POST /_fake/google-keys {"client_email", "n", "e"}``: a service account's key."""
    key = h._json_body(body)
    try:
        h.server.fake._backend.google.register(str(key["client_email"]), int(key["n"]),
                                               int(key["e"]))
    except (KeyError, TypeError, ValueError):
        raise ApiFailure(400, "expected {client_email, n, e}") from None
    h._send_json(200, {"registered": key["client_email"]})


def require_token(h: Handler) -> None:
    """`Authorization: Bearer <a token the fake issued, unexpired>`, else Google's 401."""
    scheme, _, token = h.headers.get("Authorization", "").partition(" ")
    h._offered_key = token.strip()
    if scheme != "Bearer" or not h.server.fake._backend.google.valid(token.strip()):
        raise ApiFailure(401, "Request had invalid authentication credentials. Expected "
                         "OAuth 2 access token, login cookie or other valid authentication "
                         "credential.")


def storage_api(h: Handler, raw_path: str, query: dict[str, str]) -> None:
    """``GET /storage/v1/b/{bucket}/o/{object}`` (see the module docstring)."""
    require_token(h)
    rest = raw_path.removeprefix("/storage/v1/b/")
    bucket, sep, name = rest.partition("/o/")
    if h.command != "GET" or not sep or "/" in name or "/" in bucket or not name:
        raise ApiFailure(404, "Not Found")
    uri = f"gs://{bucket}/{unquote(name)}"
    book = h.server.fake._backend.remote
    job = next((j for j in book.listed("vertex") if output_uri(j) == uri), None)
    if job is None or book.state(job) != "succeeded":
        raise ApiFailure(404, f"No such object: {bucket}/{unquote(name)}")
    fault = h._faults("content", None)
    size = h.server.fake.options.video_bytes
    if query.get("alt") != "media":
        h._send_json(200, {"kind": "storage#object", "bucket": bucket, "name": unquote(name),
                           "size": str(size), "contentType": "video/mp4"})
        return
    h.server.fake._backend.count("gcs_downloads")
    h._serve_bytes(job.id, "video", size, "video/mp4", fault)


def output_uri(job: RemoteJob) -> str | None:
    """Where a Vertex operation with a `storageUri` wrote its video, as Veo names it."""
    parameters = job.input.get("parameters")
    storage = parameters.get("storageUri") if isinstance(parameters, dict) else None
    return f"{storage.rstrip('/')}/{job.id}/sample_0.mp4" if isinstance(storage, str) else None
