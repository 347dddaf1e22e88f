"""Request authentication as ``httpx.Auth`` flows, one flow per credential kind.

Each scheme writes its logic once, as a generator (:meth:`RefreshingAuth.flow`) that yields
either a request to send or a :class:`Refresh` marker when it needs a credential that may
cost I/O (reading a token file, running an exec plugin, calling an OIDC issuer). The sync
driver does that I/O inline; the async driver runs it in a worker thread, so an event loop is
never blocked by a plugin. The watch wire path does not send through httpx, but it runs the
same flow to its first yield (:func:`authorize`), so REST and watch requests carry identical
credentials.
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import time
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from typing import Any

import httpx

from kfast._exec import ExecProvider
from kfast._oidc import OIDCProvider
from kfast.errors import AuthError, ConfigError

__all__ = ["RefreshingAuth", "BearerAuth", "BasicAuth", "ExecAuth", "OIDCAuth", "Refresh", "authorize"]

# Service-account and projected tokens rotate; client-go re-reads them about once a minute.
TOKEN_FILE_REFRESH_SECONDS = 60.0


@dataclass(frozen=True)
class Refresh:
    """Flow step: "give me the credential" (``force``: the cached one was refused)."""

    force: bool


class RefreshingAuth(httpx.Auth):
    """A credential that may need I/O to obtain and may be refreshed once after a 401."""

    _stale = False  # set by invalidate(): the next request fetches a fresh credential

    def cached(self) -> Any:
        """The current credential if it can be had without I/O, else None."""
        return None

    def refresh(self, force: bool) -> Any:
        """Obtain the credential (may block: file, subprocess, HTTP)."""
        raise NotImplementedError

    def apply(self, request: httpx.Request, credential: Any) -> None:
        raise NotImplementedError

    def can_retry(self) -> bool:
        return True

    def invalidate(self) -> None:
        """The server refused the credential outside this flow (a watch on its own socket)."""
        self._stale = True

    def flow(self, request: httpx.Request) -> Generator[httpx.Request | Refresh, Any, None]:
        stale, self._stale = self._stale, False
        cred = None if stale else self.cached()
        if cred is None:
            cred = yield Refresh(force=stale)
        self.apply(request, cred)
        response = yield request
        if response.status_code == 401 and self.can_retry():
            fresh = yield Refresh(force=True)
            if fresh != cred:
                self.apply(request, fresh)
                yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self.flow(request)
        reply: Any = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration:
                return
            if isinstance(step, Refresh):
                reply = self.refresh(step.force)
            else:
                reply = yield step

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self.flow(request)
        reply: Any = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration:
                return
            if isinstance(step, Refresh):
                reply = await asyncio.to_thread(self.refresh, step.force)
            else:
                reply = yield step


# What RFC 9110 allows in a field value: visible ASCII and Latin-1, spaces and tabs inside.
_HEADER_VALUE = re.compile(r"[\x21-\x7e\x80-\xff](?:[\x20-\x7e\x80-\xff\t]*[\x21-\x7e\x80-\xff])?")


def set_authorization(request: httpx.Request, value: str, source: str) -> None:
    """Set ``Authorization``, refusing a credential the HTTP layer would reject. The HTTP
    stack's own error quotes the whole header, which would put the secret in messages and
    logs (a token pasted with a trailing CR, say); ours names only where it came from."""
    if not _HEADER_VALUE.fullmatch(value):
        raise AuthError(
            f"the {source} contains characters not allowed in an HTTP header (control "
            "characters, line breaks or non-Latin-1 text); it was not sent"
        )
    request.headers["Authorization"] = value


class BearerAuth(RefreshingAuth):
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

    def cached(self) -> str | None:
        if self._file is None:
            return self._static or ""
        if self._cached is not None and time.monotonic() - self._read_at < TOKEN_FILE_REFRESH_SECONDS:
            return self._cached
        return None

    def refresh(self, force: bool) -> str:
        return self.token(force=force) or ""

    def apply(self, request: httpx.Request, credential: Any) -> None:
        if credential:
            set_authorization(request, f"Bearer {credential}", "bearer token")

    def can_retry(self) -> bool:
        return self._file is not None


class BasicAuth(RefreshingAuth):
    """``username``/``password`` from the kubeconfig (HTTP basic; most clusters refuse it)."""

    def __init__(self, username: str, password: str) -> None:
        raw = f"{username}:{password}".encode()
        self._header = "Basic " + base64.b64encode(raw).decode()
        self.username = username

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=[REDACTED])"

    def cached(self) -> str:
        return self._header

    def apply(self, request: httpx.Request, credential: Any) -> None:
        set_authorization(request, credential, "username/password")

    def can_retry(self) -> bool:
        return False


class ExecAuth(RefreshingAuth):
    """Credentials from an exec plugin: a bearer token, a client certificate, or both.

    A client certificate is not a header: the config's TLS state reads it from the provider
    when it builds the SSLContext, so this flow only has to make sure the plugin has run."""

    def __init__(self, provider: ExecProvider) -> None:
        self.provider = provider

    def __repr__(self) -> str:
        return f"ExecAuth({self.provider!r})"

    def cached(self) -> Any:
        return self.provider.cached()

    def refresh(self, force: bool) -> Any:
        return self.provider.get(force=force)

    def apply(self, request: httpx.Request, credential: Any) -> None:
        if credential.token:
            set_authorization(request, f"Bearer {credential.token}", "exec plugin token")


class OIDCAuth(RefreshingAuth):
    def __init__(self, provider: OIDCProvider) -> None:
        self.provider = provider

    def __repr__(self) -> str:
        return f"OIDCAuth({self.provider!r})"

    def cached(self) -> str | None:
        return self.provider.cached()

    def refresh(self, force: bool) -> str:
        return self.provider.get(force=force)

    def apply(self, request: httpx.Request, credential: Any) -> None:
        set_authorization(request, f"Bearer {credential}", "OIDC id-token")

    def can_retry(self) -> bool:
        return self.provider.can_refresh


def authorize(auth: httpx.Auth | None, request: httpx.Request) -> httpx.Request:
    """Apply ``auth`` to ``request`` without sending it (first step of the auth flow)."""
    if auth is None:
        return request
    flow = auth.sync_auth_flow(request)
    try:
        return next(flow)
    finally:
        flow.close()
