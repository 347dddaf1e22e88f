"""kfast's exceptions, one tree.

::

    KfastError
    ├── ClientClosedError           a Client/AsyncClient used after close() (also a RuntimeError)
    ├── ConfigError                 kubeconfig / in-cluster config is missing or broken
    ├── AuthError                   credentials could not be obtained at run time (an exec
    │                               plugin failed or printed garbage, an OIDC refresh failed)
    ├── ResourceLookupError         a name the RESTMapper cannot turn into one resource
    │   ├── NoMatchError            no served resource or kind has that name
    │   └── AmbiguousResourceError  several do (carries the candidates)
    ├── DecodeError                 a watch/list body could not be decoded (carries the offset)
    │   └── LineTooLongError        one watch line exceeded the decoder's limit
    ├── TransportError              the connection failed (cause chained)
    │   ├── ConnectError            TCP connect failed (nothing was sent)
    │   │   ├── ConnectTimeout
    │   │   ├── TLSError            handshake failed: untrusted server, bad client cert
    │   │   └── ProxyError          the proxy is unreachable, failed TLS, or refused the tunnel
    │   ├── ReadTimeout
    │   ├── WriteTimeout
    │   ├── PoolTimeout             no free connection in time
    │   └── StreamTruncated         the server closed a body before its end
    └── ApiError                    the API server answered with a Status (code, reason, ...)
        ├── BadRequest              400
        ├── Unauthorized            401
        ├── Forbidden               403
        ├── NotFound                404
        ├── MethodNotAllowed        405
        ├── NotAcceptable           406
        ├── Conflict                409 (reason Conflict)
        │   └── AlreadyExists       409 (reason AlreadyExists)
        ├── Gone                    410 (reason Gone)
        │   └── Expired             410 (reason Expired): resourceVersion/continue too old
        ├── RequestEntityTooLarge   413
        ├── UnsupportedMediaType    415
        ├── Invalid                 422
        ├── TooManyRequests         429 (carries retry_after)
        ├── InternalError           500
        ├── ServiceUnavailable      503 (carries retry_after)
        └── ServerTimeout           504, or reason ServerTimeout / Timeout

Every ApiError carries the Status's ``details.causes`` as ``causes`` (the fields of a 422,
the conflicting fields and managers of a server-side apply 409). Errors raised by
:class:`kfast.Client` after retrying carry ``attempts`` (how many times the
request was sent). Messages never contain credentials.

The Rust extension raises these classes directly (it imports this module), so a decode
error from the native watch decoder is the same ``DecodeError`` Python code catches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "KfastError",
    "ClientClosedError",
    "ConfigError",
    "AuthError",
    "ResourceLookupError",
    "NoMatchError",
    "AmbiguousResourceError",
    "DecodeError",
    "LineTooLongError",
    "TransportError",
    "ConnectError",
    "ConnectTimeout",
    "TLSError",
    "ProxyError",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "StreamTruncated",
    "ApiError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "NotAcceptable",
    "Conflict",
    "AlreadyExists",
    "Gone",
    "Expired",
    "RequestEntityTooLarge",
    "UnsupportedMediaType",
    "Invalid",
    "TooManyRequests",
    "InternalError",
    "ServiceUnavailable",
    "ServerTimeout",
    "api_error_from_status",
]


class KfastError(Exception):
    """Base class of every error kfast raises on purpose."""

    attempts: int = 1  # how many times the request was sent (set by the clients' retries)


class ClientClosedError(KfastError, RuntimeError):
    """A :class:`kfast.Client` or :class:`kfast.AsyncClient` (or a watch, list or log stream
    of one) was used after ``close()``; nothing was sent. Also a ``RuntimeError``, what
    using a closed resource raises elsewhere in Python."""


class ConfigError(KfastError):
    """The client configuration is missing or broken; the message names the file and key."""


class AuthError(KfastError):
    """Credentials could not be obtained while running: an exec plugin failed, printed
    something that is not an ExecCredential, or an OIDC refresh was refused. The message
    carries the plugin's stderr or the issuer's answer, never a token."""


class ResourceLookupError(KfastError, LookupError):
    """A resource or kind name could not be resolved to exactly one served resource.
    Also a ``LookupError``, so code written against the factory's resolver hook catches it."""


class NoMatchError(ResourceLookupError):
    """Nothing the server serves matches the name (after one discovery refresh)."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.name))


class AmbiguousResourceError(ResourceLookupError):
    """The name matches several resources; ``candidates`` lists them (as
    ``resource.version.group`` strings) so the caller can pick one."""

    def __init__(self, message: str, name: str = "", candidates: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.name = name
        self.candidates = tuple(candidates)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.name, self.candidates))


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
    """The TCP or TLS connection could not be established; the request was not sent."""


class ConnectTimeout(ConnectError):
    """The TCP connection was not established within the connect timeout."""


class TLSError(ConnectError):
    """The TLS handshake failed (server certificate not trusted, client certificate refused)."""


class ProxyError(ConnectError):
    """The proxy (``proxy-url`` or the environment) could not be reached, its own TLS
    handshake failed (an ``https://`` proxy whose certificate is not trusted), or it refused
    the tunnel (407, 403, 502). The message names the proxy without its credentials."""


class ReadTimeout(TransportError):
    """No bytes arrived within the read timeout."""


class WriteTimeout(TransportError):
    """The request could not be written within the write timeout."""


class PoolTimeout(TransportError):
    """No connection of the pool became free in time."""


class StreamTruncated(TransportError):
    """The server closed the connection in the middle of a response body or watch line."""


class ApiError(KfastError):
    """The API server answered with a failure ``Status``.

    ``status`` is the whole Status object as a dict; ``code``, ``reason``, ``message`` and
    ``details`` are read from it, and ``causes`` is ``details.causes`` (a list, empty when
    the Status has none).
    """

    def __init__(self, status: Mapping[str, Any] | None = None, *, code: int | None = None) -> None:
        st = dict(status or {})
        self.status: dict[str, Any] = st
        self.code: int = _as_code(st.get("code")) or code or 0
        self.reason: str = str(st.get("reason") or "")
        self.message: str = str(st.get("message") or "")
        details = st.get("details")
        # A server (or proxy) may send a malformed Status; keep what can be read.
        self.details: dict[str, Any] = dict(details) if isinstance(details, Mapping) else {}
        causes = self.details.get("causes")
        # Each cause is {"reason", "message", "field"}: the invalid fields of a 422, the
        # conflicting fields (and their managers, in the message) of an apply conflict.
        self.causes: list[dict[str, Any]] = (
            [dict(c) for c in causes if isinstance(c, Mapping)] if isinstance(causes, list) else [])
        super().__init__(f"{self.code} {self.reason or type(self).__name__}: {self.message}".rstrip(": "))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status,), dict(self.__dict__))

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        self.__dict__.update(state or {})


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


class NotAcceptable(ApiError):
    """406: none of the requested media types can be served."""


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


class Expired(Gone):
    """410 with reason Expired: the resourceVersion or continue token has been compacted."""


class RequestEntityTooLarge(ApiError):
    """413: the request body is larger than the server accepts."""


class UnsupportedMediaType(ApiError):
    """415: the Content-Type (for example a patch type) is not supported here."""


class Invalid(ApiError):
    """422: the object failed validation; ``causes`` lists the field errors."""


class _RetryAfter(ApiError):
    """An answer that may say when to come back (``Retry-After`` or details.retryAfterSeconds)."""

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
            try:
                retry_after = float(ras) if ras is not None else None
            except (TypeError, ValueError):
                retry_after = None
        self.retry_after: float | None = retry_after


class TooManyRequests(_RetryAfter):
    """429: the server (or API Priority and Fairness) throttled the request."""


class InternalError(ApiError):
    """500: the server failed."""


class ServiceUnavailable(_RetryAfter):
    """503: the server (or an aggregated API behind it) is not available right now."""


class ServerTimeout(ApiError):
    """504 or reason ServerTimeout/Timeout: the server gave up waiting."""


_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
    409: Conflict,
    410: Gone,
    413: RequestEntityTooLarge,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
    500: InternalError,
    503: ServiceUnavailable,
    504: ServerTimeout,
}


def _as_code(v: Any) -> int:
    """A Status ``code`` as an int; 0 when missing or not a number."""
    if isinstance(v, bool):
        return 0
    if isinstance(v, int):
        return v
    try:
        return int(str(v))
    except ValueError:
        return 0


def api_error_from_status(
    status: Mapping[str, Any] | None, *, code: int | None = None, retry_after: float | None = None
) -> ApiError:
    """Build the most specific :class:`ApiError` for a Status dict (or an HTTP code alone)."""
    st = dict(status) if isinstance(status, Mapping) else {}
    c = _as_code(st.get("code")) or code or 0
    reason = str(st.get("reason") or "")
    if reason == "AlreadyExists":
        cls: type[ApiError] = AlreadyExists
    elif reason == "Expired":
        cls = Expired
    elif reason == "Gone":
        cls = Gone
    elif reason in ("ServerTimeout", "Timeout"):
        # kube-apiserver sends reason ServerTimeout with code 500 and Timeout with 504.
        cls = ServerTimeout
    else:
        cls = _BY_CODE.get(c, ApiError)
    if issubclass(cls, _RetryAfter):
        return cls(st, code=c, retry_after=retry_after)
    return cls(st, code=c)
