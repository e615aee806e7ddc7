"""The one exception tree of sora, each class with the exit code the CLI returns.

SoraError                      1  anything sora reports as a plain failure
|-- JobFailed                  1  a job ended failed or cancelled
|-- CannotSend                 1  a job that can never be sent (its image or remix source is gone)
|-- ContentMismatch            1  a saved file whose bytes are not the recorded ones
|-- StoreError                 1  the local job store cannot be opened or used
|   |-- StoreUnavailable       1  the database cannot be reached right now
|   |-- LeaseLost              1  the job is no longer this runner's to work
|   `-- RemoteIdTaken          1  another job already owns this remote video
|-- ApiError                   1  the remote service refused the work (HTTP error)
|   `-- AuthError              4  missing or rejected credentials (also 401/403)
|-- TransportError             1  no usable answer from the server (connect, timeout, dropped)
|   `-- AmbiguousCreate        1  a create may or may not have reached the server
|-- InvalidInput               2  bad usage or input; nothing was recorded
|   |-- IllegalTransition      2  a job cannot go from one status to another
|   `-- BudgetExceeded         2  a submit would cross max_job_cost or max_daily_cost
|-- JobNotFound                3  no such job, or an ambiguous id prefix
|   `-- AmbiguousJobRef        3  an id prefix that more than one job has
`-- WaitTimeout                5  `wait --timeout` ran out while jobs were unfinished

The CLI catches SoraError once, prints ``str(error)`` as one line on stderr and
exits with ``error.exit_code``. Messages never contain the API key.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    AUTH = 4
    TIMEOUT = 5
    INTERRUPTED = 130


class SoraError(Exception):
    exit_code: ClassVar[ExitCode] = ExitCode.FAILED


class JobFailed(SoraError):
    pass


class CannotSend(SoraError):
    """A job that can never be sent (its image vanished, its remix source is gone):
    the runner fails it with `code` without sending anything."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ContentMismatch(SoraError):
    """A saved file whose bytes are not the ones recorded (changed, or replaced)."""


class StoreError(SoraError):
    pass


class StoreUnavailable(StoreError):
    """The database cannot be reached right now (down, restarting, connection lost).

    Nothing was changed by the statement that failed, except possibly by a COMMIT
    whose answer was lost: every write the runner makes is safe to find done.
    """


class RemoteIdTaken(StoreError):
    """Another job (perhaps of another runner) already owns this remote video."""


class LeaseLost(StoreError):
    """The job is no longer this runner's to work (cancelled, or taken over)."""


class InvalidInput(SoraError):
    exit_code = ExitCode.USAGE


class IllegalTransition(InvalidInput):
    def __init__(self, job_id: str, src: object, dst: object) -> None:
        super().__init__(f"job {job_id} cannot go from {src} to {dst}")


class BudgetExceeded(InvalidInput):
    """A submit would cross `max_job_cost` or `max_daily_cost` (exit 2; --force overrides)."""


class JobNotFound(SoraError):
    exit_code = ExitCode.NOT_FOUND


class AmbiguousJobRef(JobNotFound):
    """An id prefix that more than one job has (`sora serve` answers 409, not 404)."""


class WaitTimeout(SoraError):
    exit_code = ExitCode.TIMEOUT


class ApiError(SoraError):
    """An HTTP error answer from the Videos API, with what the server said."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.request_id = request_id
        self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [self.message]
        if self.http_status is not None:
            parts.append(f"(HTTP {self.http_status}")
            parts[-1] += f", request {self.request_id})" if self.request_id else ")"
        return " ".join(parts)


class AuthError(ApiError):
    exit_code = ExitCode.AUTH


class TransportError(SoraError):
    """The server could not be reached, timed out or dropped the connection.

    ``sent`` is False only when the request provably never reached the server
    (connect error, connect timeout, pool timeout): then a retry cannot duplicate work.
    """

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class AmbiguousCreate(TransportError):
    """A create request whose outcome is unknown: it may have created a billed job."""

    def __init__(self, message: str, *, http_status: int | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(message, sent=True)
        self.http_status = http_status
        self.request_id = request_id
