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
import json
import time
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, unquote

from sora_cli.fake.content import content_size
from sora_cli.fake.errors import ApiFailure
from sora_cli.fake.jobs import RemoteJob
from sora_cli.fake.oauth import GoogleAuth, rsa_verify

if TYPE_CHECKING:
    from sora_cli.fake.host import Responder

AUDIENCE: Final = "https://oauth2.googleapis.com/token"
GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE: Final = "https://www.googleapis.com/auth/cloud-platform"
_SHA256_INFO: Final = bytes.fromhex("3031300d060960864801650304020105000420")


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _grant_error(why: str) -> ApiFailure:
    return ApiFailure(400, why, raw={"error": "invalid_grant", "error_description": why})


def token_endpoint(h: Responder, body: bytes) -> None:
    auth: GoogleAuth = h.server.fake.backend.google
    form = dict(parse_qsl(body.decode("utf-8", "replace")))
    if form.get("grant_type") != GRANT:
        raise ApiFailure(400, "unsupported_grant_type", raw={
            "error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
    h.take_fault("token", None)
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
    h.send_json(200, {"access_token": auth.issue(seconds), "expires_in": int(seconds),
                       "token_type": "Bearer"})


def register_key(h: Responder, body: bytes) -> None:
    """``POST /_fake/google-keys {"client_email", "n", "e"}``: a service account's key."""
    key = h.json_body(body)
    try:
        h.server.fake.backend.google.register(str(key["client_email"]), int(key["n"]),
                                               int(key["e"]))
    except (KeyError, TypeError, ValueError):
        raise ApiFailure(400, "expected {client_email, n, e}") from None
    h.send_json(200, {"registered": key["client_email"]})


def require_token(h: Responder) -> None:
    """`Authorization: Bearer <a token the fake issued, unexpired>`, else Google's 401."""
    scheme, _, token = h.headers.get("Authorization", "").partition(" ")
    h.offered(token.strip())
    if scheme != "Bearer" or not h.server.fake.backend.google.valid(token.strip()):
        raise ApiFailure(401, "Request had invalid authentication credentials. Expected "
                         "OAuth 2 access token, login cookie or other valid authentication "
                         "credential.")


def storage_api(h: Responder, raw_path: str, query: dict[str, str]) -> None:
    """``GET /storage/v1/b/{bucket}/o/{object}`` (see the module docstring)."""
    require_token(h)
    rest = raw_path.removeprefix("/storage/v1/b/")
    bucket, sep, name = rest.partition("/o/")
    if h.command != "GET" or not sep or "/" in name or "/" in bucket or not name:
        raise ApiFailure(404, "Not Found")
    uri = f"gs://{bucket}/{unquote(name)}"
    book = h.server.fake.backend.remote
    job = next((j for j in book.listed("vertex") if output_uri(j) == uri), None)
    if job is None or book.state(job) != "succeeded":
        raise ApiFailure(404, f"No such object: {bucket}/{unquote(name)}")
    fault = h.take_fault("content", None)
    video_bytes = h.server.fake.options.video_bytes
    size = content_size("video", video_bytes)
    if query.get("alt") != "media":
        h.send_json(200, {"kind": "storage#object", "bucket": bucket, "name": unquote(name),
                           "size": str(size), "contentType": "video/mp4"})
        return
    h.server.fake.backend.count("gcs_downloads")
    h.serve_bytes(job.id, "video", size, "video/mp4", fault, real=video_bytes is None)


def output_uri(job: RemoteJob) -> str | None:
    """Where a Vertex operation with a `storageUri` wrote its video, as Veo names it."""
    parameters = job.input.get("parameters")
    storage = parameters.get("storageUri") if isinstance(parameters, dict) else None
    return f"{storage.rstrip('/')}/{job.id}/sample_0.mp4" if isinstance(storage, str) else None
