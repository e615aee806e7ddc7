"""Error answers of the fake Videos API server: the 4-key error envelope, each other
family's shape, and the answers of injected error faults."""

from __future__ import annotations

import math
import uuid
from typing import Final

ERROR_TYPES: Final[dict[int, str]] = {401: "invalid_request_error", 429: "requests"}
FAULT_MESSAGES: Final[dict[int, str]] = {
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The server is overloaded or not ready yet.",
}


GOOGLE_STATUS: Final[dict[int, str]] = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
# Kling's business codes for the HTTP statuses the fake answers (its error-code table)
KLING_CODES: Final[dict[int, int]] = {400: 1201, 401: 1000, 403: 1103, 404: 1203, 429: 1302,
                                      500: 5000, 503: 5001, 504: 5002}
_TITLES: Final[dict[int, str]] = {401: "Unauthenticated", 404: "Not found",
                                  429: "Request was throttled"}
# MiniMax answers its errors as HTTP 200 with a base_resp code (the official error code
# table); a status not in here (a gateway's 502, 503, 504) stays an HTTP error.
MINIMAX_CODES: Final[dict[int, tuple[int, str]]] = {
    400: (2013, "invalid params"), 401: (1004, "login fail: Please carry the API secret key "
                                              "in the 'Authorization' field of the request "
                                              "header"),
    402: (1008, "insufficient balance"), 404: (2013, "invalid params"),
    429: (1002, "rate limit"), 500: (1000, "unknown error")}


class ApiFailure(Exception):
    """An HTTP error answer, rendered with the 4-key error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        details: list[dict[str, object]] | None = None,
        raw: dict[str, object] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}
        self.details = details  # fal: validation errors, `{"detail": [...]}`
        self.raw = raw  # a body of its own (fal's cancel answers `{"status": ...}`)
        self.title = title  # Replicate's problem title

    def answer(self, family: str) -> tuple[int, dict[str, object]]:
        """The HTTP status and body of the error answer, as the family's API sends it."""
        if family == "minimax" and self.raw is None and self.status in MINIMAX_CODES:
            code, words = MINIMAX_CODES[self.status]
            return 200, {"base_resp": {"status_code": code,
                                       "status_msg": f"{words}: {self.message}"}}
        return self.status, self.body(family)

    def body(self, family: str) -> dict[str, object]:
        """The error answer in the shape the family's API uses."""
        if self.raw is not None:
            return self.raw
        if family == "runway":  # {"error", "issues", "docUrl"} (Runway's API reference)
            issues = [{"code": "invalid", "path": [_last(d.get("loc"))],
                       "message": d.get("msg")} for d in self.details or []]
            return {"error": self.message, **({"issues": issues} if issues else {})}
        if family == "luma":  # undocumented: FastAPI's shape, as Luma's newer API answers
            return {"detail": self.message}
        if family == "minimax":  # a gateway's error: not a code of MiniMax's table
            return {"base_resp": {"status_code": 1000, "status_msg": self.message}}
        if family == "fal":
            return {"detail": self.details if self.details is not None else self.message}
        if family == "replicate":
            title = self.title or _TITLES.get(self.status, "Request failed")
            return {"title": title, "detail": self.message, "status": self.status}
        if family == "vertex":  # google.rpc.Status (Vertex, GCS)
            return {"error": {"code": self.status, "message": self.message,
                              "status": GOOGLE_STATUS.get(self.status, "UNKNOWN")}}
        if family == "kling":
            code = KLING_CODES.get(self.status, 5000 if self.status >= 500 else 1200)
            return {"code": code, "message": self.message, "request_id": uuid.uuid4().hex}
        return self.envelope()

    def envelope(self) -> dict[str, object]:
        kind = ERROR_TYPES.get(self.status)
        if kind is None:
            kind = "server_error" if self.status >= 500 else "invalid_request_error"
        error = {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        return {"error": error}


def _last(loc: object) -> object:
    return loc[-1] if isinstance(loc, list) and loc else None


def fault_failure(status: int, retry_after_ms: int | None, text: str | None = None
                  ) -> ApiFailure:
    """The answer of an injected error, with retry hints when a delay is given."""
    headers: dict[str, str] = {}
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
        headers["retry-after"] = str(max(1, math.ceil(retry_after_ms / 1000)))
    message = text or FAULT_MESSAGES.get(status, f"Injected fault (HTTP {status}).")
    code = "rate_limit_exceeded" if status == 429 else None
    return ApiFailure(status, message, code=code, headers=headers)
