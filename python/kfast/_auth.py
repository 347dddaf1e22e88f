"""Request authentication as ``httpx.Auth`` flows.

The watch wire path does not send through httpx, but it runs the same flow to its first
yield (:func:`authorize`), so REST and watch requests carry identical credentials.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator

import httpx

from kfast.errors import ConfigError

__all__ = ["BearerAuth", "authorize"]

# Service-account and projected tokens rotate; client-go re-reads them about once a minute.
TOKEN_FILE_REFRESH_SECONDS = 60.0


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer`` from a static token or a token file re-read periodically.

    On a 401 the file is re-read at once and the request retried once with the new token.
    """

    def __init__(self, token: str | None = None, token_file: str | None = None) -> None:
        self._static = token
        self._file = token_file
        self._cached: str | None = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BearerAuth(token={'[REDACTED]' if self._static else None}, token_file={self._file!r})"

    def token(self, *, force: bool = False) -> str | None:
        if self._file is None:
            return self._static
        with self._lock:
            now = time.monotonic()
            if force or self._cached is None or now - self._read_at >= TOKEN_FILE_REFRESH_SECONDS:
                try:
                    with open(self._file) as f:
                        self._cached = f.read().strip()
                except OSError as e:
                    if self._cached is None:
                        raise ConfigError(f"token file {self._file} cannot be read ({e.strerror})") from e
                    # keep the last good token; the file is mid-rotation
                self._read_at = now
            return self._cached or self._static

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        tok = self.token()
        if tok:
            request.headers["Authorization"] = f"Bearer {tok}"
        response = yield request
        if response.status_code == 401 and self._file is not None:
            fresh = self.token(force=True)
            if fresh and fresh != tok:
                request.headers["Authorization"] = f"Bearer {fresh}"
                yield request


def authorize(auth: httpx.Auth | None, request: httpx.Request) -> httpx.Request:
    """Apply ``auth`` to ``request`` without sending it (first step of the auth flow)."""
    if auth is None:
        return request
    flow = auth.sync_auth_flow(request)
    try:
        return next(flow)
    finally:
        flow.close()
