"""kfast's exceptions, one tree.

::

    KfastError
    ├── ConfigError                 kubeconfig / in-cluster config is missing or broken
    ├── DecodeError                 a watch/list body could not be decoded (carries the offset)
    │   └── LineTooLongError        one watch line exceeded the decoder's limit
    ├── TransportError              the connection failed (cause chained)
    │   ├── ConnectError
    │   ├── ReadTimeout
    │   └── StreamTruncated         the server closed a body before its end
    └── ApiError                    the API server answered with a Status (code, reason, ...)
        ├── BadRequest              400
        ├── Unauthorized            401
        ├── Forbidden               403
        ├── NotFound                404
        ├── MethodNotAllowed        405
        ├── Conflict                409 (reason Conflict)
        │   └── AlreadyExists       409 (reason AlreadyExists)
        ├── Gone                    410: resourceVersion too old (reason Expired or Gone)
        ├── Invalid                 422 (carries the field causes)
        ├── TooManyRequests         429 (carries retry_after)
        ├── InternalError           500
        └── ServerTimeout           504, or reason ServerTimeout / Timeout

The Rust extension raises these classes directly (it imports this module), so a decode
error from the native watch decoder is the same ``DecodeError`` Python code catches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "KfastError",
    "ConfigError",
    "DecodeError",
    "LineTooLongError",
    "TransportError",
    "ConnectError",
    "ReadTimeout",
    "StreamTruncated",
    "ApiError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "Conflict",
    "AlreadyExists",
    "Gone",
    "Invalid",
    "TooManyRequests",
    "InternalError",
    "ServerTimeout",
    "api_error_from_status",
]


class KfastError(Exception):
    """Base class of every error kfast raises on purpose."""


class ConfigError(KfastError):
    """The client configuration is missing or broken; the message names the file and key."""


class DecodeError(KfastError):
    """A body could not be decoded. ``offset`` is the byte offset in the decoded stream
    (body bytes, after de-chunking) where the bad line starts."""

    def __init__(self, message: str, offset: int = -1) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.offset))


class LineTooLongError(DecodeError):
    """A single watch line grew past the decoder's ``max_line_bytes``."""


class TransportError(KfastError):
    """The connection to the API server failed; ``__cause__`` holds the lower-level error."""


class ConnectError(TransportError):
    """The TCP or TLS connection could not be established."""


class ReadTimeout(TransportError):
    """No bytes arrived within the read timeout."""


class StreamTruncated(TransportError):
    """The server closed the connection in the middle of a response body or watch line."""


class ApiError(KfastError):
    """The API server answered with a failure ``Status``.

    ``status`` is the whole Status object as a dict; ``code``, ``reason``, ``message`` and
    ``details`` are read from it.
    """

    def __init__(self, status: Mapping[str, Any] | None = None, *, code: int | None = None) -> None:
        st = dict(status or {})
        self.status: dict[str, Any] = st
        self.code: int = int(st.get("code") or code or 0)
        self.reason: str = str(st.get("reason") or "")
        self.message: str = str(st.get("message") or "")
        self.details: dict[str, Any] = dict(st.get("details") or {})
        super().__init__(f"{self.code} {self.reason or type(self).__name__}: {self.message}".rstrip(": "))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status,), {"code": self.code})

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.code = state.get("code", self.code)


class BadRequest(ApiError):
    """400: the request was malformed."""


class Unauthorized(ApiError):
    """401: the credentials were missing, wrong or expired."""


class Forbidden(ApiError):
    """403: the user may not do this."""


class NotFound(ApiError):
    """404: the object or resource does not exist."""


class MethodNotAllowed(ApiError):
    """405: the verb is not supported on this resource."""


class Conflict(ApiError):
    """409: an optimistic-concurrency or field-manager conflict."""


class AlreadyExists(Conflict):
    """409 with reason AlreadyExists: create of an existing name."""


class Gone(ApiError):
    """410: the requested resourceVersion (or continue token) is too old.

    For an expired continue token, ``continue_token`` holds the fresh token the server sent.
    """

    @property
    def continue_token(self) -> str | None:
        meta = self.status.get("metadata") or {}
        tok = meta.get("continue")
        return str(tok) if tok else None


class Invalid(ApiError):
    """422: the object failed validation; ``causes`` lists the field errors."""

    @property
    def causes(self) -> list[dict[str, Any]]:
        return list(self.details.get("causes") or [])


class TooManyRequests(ApiError):
    """429: the server (or API Priority and Fairness) throttled the request."""

    def __init__(
        self,
        status: Mapping[str, Any] | None = None,
        *,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code=code)
        if retry_after is None:
            ras = self.details.get("retryAfterSeconds")
            retry_after = float(ras) if ras is not None else None
        self.retry_after: float | None = retry_after


class InternalError(ApiError):
    """500: the server failed."""


class ServerTimeout(ApiError):
    """504 or reason ServerTimeout/Timeout: the server gave up waiting."""


_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
    500: InternalError,
    504: ServerTimeout,
}


def api_error_from_status(
    status: Mapping[str, Any] | None, *, code: int | None = None, retry_after: float | None = None
) -> ApiError:
    """Build the most specific :class:`ApiError` for a Status dict (or an HTTP code alone)."""
    st = dict(status or {})
    c = int(st.get("code") or code or 0)
    reason = str(st.get("reason") or "")
    if reason == "AlreadyExists":
        cls: type[ApiError] = AlreadyExists
    elif reason in ("Expired", "Gone"):
        cls = Gone
    elif reason in ("ServerTimeout", "Timeout") and c not in _BY_CODE:
        cls = ServerTimeout
    else:
        cls = _BY_CODE.get(c, ApiError)
    if cls is TooManyRequests:
        return TooManyRequests(st, code=c, retry_after=retry_after)
    return cls(st, code=c)
