"""The I/O-free core of :class:`kfast.Client` and :class:`kfast.AsyncClient`.

:meth:`Core.call` is a generator for one API call. It yields :class:`Send` (send this
request, reply with the ``httpx.Response`` or the exception) and :class:`Sleep` (wait this
long, for the rate limiter or a retry's backoff), and returns the decoded body or raises the
typed error. The sync driver answers with ``httpx.Client.send`` and ``time.sleep``; the
async one with ``await``; the decisions (rate limit, retry, backoff, Retry-After, warnings,
error mapping) are made here once, and tested without sockets.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from kfast import errors
from kfast._backoff import MAX_RETRY_AFTER_SECONDS
from kfast._ratelimit import TokenBucket
from kfast._transport import connection_was_used, map_transport_error
from kfast._warnings import WarningHandler, parse_warning_header

__all__ = ["Core", "RetryPolicy", "Send", "Sleep", "Read", "Step", "IDEMPOTENT_METHODS", "decode_body",
           "error_from_response"]

log = logging.getLogger("kfast.client")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# 5xx answers that are worth another try when the server says when (Retry-After).
RETRYABLE_5XX = frozenset({500, 502, 503, 504})

Params = Mapping[str, str | int | float | bool | list[str]] | None


@dataclass(frozen=True)
class Send:
    """Send ``request``; with ``stream`` the reply is a response whose body is not read yet."""

    request: httpx.Request
    stream: bool = False


@dataclass(frozen=True)
class Sleep:
    seconds: float
    reason: str


@dataclass(frozen=True)
class Read:
    """Read the body of a streamed ``response`` whole, then close it (reply None or the
    exception): an error answer to a streamed request is mapped from its Status body, and a
    response that will be retried must give its connection back first."""

    response: httpx.Response


Step = Send | Sleep | Read
Outcome = httpx.Response | BaseException


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter.

    ``max_attempts`` counts the first try (1 turns retries off). A ``Retry-After`` from the
    server is honoured as given instead of the backoff when it is at most
    ``max_retry_after``; a longer one is not waited for at all: the call fails at once with
    the error, whose ``retry_after`` says what the server asked (waiting the cap and asking
    again would only spend the whole retry budget on answers the server announced)."""

    max_attempts: int = 5
    backoff_base: float = 0.2
    backoff_max: float = 10.0
    max_retry_after: float = MAX_RETRY_AFTER_SECONDS

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        return float(rand()) * min(self.backoff_max, self.backoff_base * (2.0 ** (attempt - 1)))

    def after_response(self, method: str, resp: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before sending again, or None to give up with the error."""
        if attempt >= self.max_attempts:
            return None
        ra = retry_after(resp.headers)
        code = resp.status_code
        # 429 is answered before the request is executed (APF, max-in-flight), so any
        # verb may be sent again; a 5xx may come after a write was applied, so only
        # idempotent ones, and only when the server said to come back.
        if code == 429 or (code in RETRYABLE_5XX and ra is not None and method in IDEMPOTENT_METHODS):
            if ra is None:
                return self.backoff(attempt)
            return ra if ra <= self.max_retry_after else None
        return None

    def after_error(self, method: str, exc: BaseException, attempt: int) -> float | None:
        if attempt >= self.max_attempts:
            return None
        if not isinstance(exc, httpx.TransportError):
            return None
        if method in IDEMPOTENT_METHODS or not connection_was_used(exc):
            return self.backoff(attempt)
        return None


def retry_after(headers: httpx.Headers) -> float | None:
    v = headers.get("Retry-After")
    if v is None:
        return None
    try:
        seconds = float(v)
    except ValueError:
        return None  # HTTP-date form: fall back to backoff
    return None if math.isnan(seconds) else max(0.0, seconds)


def decode_body(resp: httpx.Response) -> Any:
    """JSON bodies decoded with msgspec; an empty body is None, other types are text."""
    content = resp.content
    if not content:
        return None
    ctype = resp.headers.get("Content-Type", "")
    if "json" in ctype or not ctype:
        try:
            return msgspec.json.decode(content)
        except msgspec.DecodeError as e:
            raise errors.DecodeError(f"{resp.request.method} {resp.request.url.path}: {e}") from e
    return resp.text


def error_from_response(resp: httpx.Response) -> errors.ApiError:
    status: Any = None
    try:
        status = msgspec.json.decode(resp.content) if resp.content else None
    except msgspec.DecodeError:
        status = None
    if not isinstance(status, dict) or status.get("kind") != "Status":
        # Not a Status (a proxy's HTML page, a plain-text 503): keep a short excerpt.
        status = {"code": resp.status_code, "message": resp.text[:200] if resp.content else ""}
    return errors.api_error_from_status(status, code=resp.status_code, retry_after=retry_after(resp.headers))


class Core:
    """Builds requests and maps responses for one client; holds no connection."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        limiter: TokenBucket | None,
        retry: RetryPolicy,
        warning_handler: WarningHandler | None,
        tls_server_name: str | None = None,
    ) -> None:
        self.base_url = httpx.URL(base_url)
        self.tls_server_name = tls_server_name
        self.headers = dict(headers)
        self.limiter = limiter
        self.retry = retry
        self.warning_handler = warning_handler

    def build_request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """An ``httpx.Request`` for ``path`` (relative to the server, which may have a path
        prefix of its own, as with ``kubectl proxy`` or Rancher), with no I/O.

        ValueError when no valid URL can be made: ``path`` is not a str starting with "/"
        (it is put in the URL as given: percent-encode what it contains), or the URL would be
        too long (a huge label selector: the server would refuse it anyway)."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"an API path is a str starting with '/', not {path!r}")
        try:
            url = self.base_url.copy_with(raw_path=self.base_url.raw_path.rstrip(b"/") + path.encode())
        except httpx.InvalidURL as e:
            raise ValueError(f"cannot make a URL of the path {_excerpt(path)}: {e}") from None
        merged = dict(self.headers)
        if json is not None:
            content = msgspec.json.encode(json)
            merged["Content-Type"] = "application/json"
        if headers:
            merged.update(headers)
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        try:
            req = httpx.Request(method.upper(), url, params=query, headers=merged, content=content)
        except httpx.InvalidURL as e:
            raise ValueError(f"cannot make a URL of {method.upper()} {_excerpt(path)} with these "
                             f"parameters: {e}") from None
        if self.tls_server_name:
            # tls-server-name: the name sent in SNI and checked against the certificate.
            req.extensions["sni_hostname"] = self.tls_server_name
        return req

    def call(self, request: httpx.Request, *, decode: bool = True,
             stream: bool = False) -> Generator[Step, Any, Any]:
        """One call. With ``stream`` a 2xx answer is returned open, its body unread (watch,
        logs: the caller reads and closes it); errors and retries are as for any call."""
        method = request.method
        attempt = 1
        while True:
            if self.limiter is not None:
                delay = self.limiter.reserve()
                if delay > 0:
                    yield Sleep(delay, "client-side rate limit")
            outcome: Outcome = yield Send(request, stream)
            if isinstance(outcome, BaseException):
                wait = self.retry.after_error(method, outcome, attempt)
                if wait is None:
                    err = map_transport_error(outcome)
                    err.attempts = attempt
                    raise err from outcome
                why = type(map_transport_error(outcome)).__name__
            else:
                self.report_warnings(outcome)
                if outcome.status_code < 400:
                    if stream:
                        return outcome
                    return decode_body(outcome) if decode else outcome
                if stream:
                    yield Read(outcome)  # the Status body, and the connection back to the pool
                wait = self.retry.after_response(method, outcome, attempt)
                if wait is None:
                    api_err = error_from_response(outcome)
                    api_err.attempts = attempt
                    raise api_err
                why = f"{outcome.status_code} {outcome.reason_phrase}"
            log.info("retrying %s %s after %s in %.2fs (attempt %d of %d)", method,
                     request.url.path, why, wait, attempt + 1, self.retry.max_attempts)
            yield Sleep(wait, why)
            attempt += 1

    def report_warnings(self, resp: httpx.Response) -> None:
        if self.warning_handler is None:
            return
        for value in resp.headers.get_list("Warning"):
            for text in parse_warning_header(value):
                self.warning_handler(text)


def _excerpt(s: str, n: int = 80) -> str:
    return repr(s if len(s) <= n else s[:n] + "...")


def _param(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    return v
