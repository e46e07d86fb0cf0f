"""Write failures, classified once, here. The category decides what happens to a batch."""

from __future__ import annotations

TRANSIENT = "transient"
THROTTLED = "throttled"
AUTH = "auth"
REJECTED = "rejected"
TOO_LARGE = "too_large"

# A throttling server's Retry-After is honoured up to this many seconds.
MAX_RETRY_AFTER = 300.0


class WriteError(Exception):
    category = "unknown"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientWriteError(WriteError):
    """Connection refused/reset, timeouts, 5xx: worth retrying soon."""

    category = TRANSIENT


class ThrottledWriteError(TransientWriteError):
    category = THROTTLED

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class AuthWriteError(TransientWriteError):
    """401/403/404: credentials or database/bucket wrong; an operator must act, we keep retrying."""

    category = AUTH


class RejectedWriteError(WriteError):
    """400/422: InfluxDB refused some points; retrying the same batch cannot help."""

    category = REJECTED


class TooLargeWriteError(WriteError):
    category = TOO_LARGE


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER) if value else None
    except ValueError:
        return None


def error_for_status(status: int, body: str, retry_after: str | None = None) -> WriteError:
    """The WriteError for an HTTP response that was not a success."""
    message = f"InfluxDB answered {status}: {body.strip()[:500]}"
    if status in (429, 503):
        return ThrottledWriteError(message, status=status, retry_after=_retry_after(retry_after))
    if status in (401, 403, 404):
        return AuthWriteError(message, status=status)
    if status == 413:
        return TooLargeWriteError(message, status=status)
    if status in (400, 422):
        return RejectedWriteError(message, status=status)
    return TransientWriteError(message, status=status)
