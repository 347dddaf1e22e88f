"""``kfast.Client`` (sync) and ``kfast.AsyncClient`` (asyncio): the same surface, two drivers
of the one I/O-free :class:`~kfast._core.Core`.

::

    with kfast.Client() as k:                      # load_config(): kubeconfig or in-cluster
        k.version()["gitVersion"]
        k.get("/api/v1/namespaces/default/configmaps", params={"limit": 10})

    async with kfast.AsyncClient() as k:
        await k.post("/api/v1/namespaces/default/configmaps", json=cm)

Every call draws from the config's rate limiter, is retried by the client's
:class:`RetryPolicy` when that is safe, sends ``Warning`` headers to the warning handler and
raises the typed errors of :mod:`kfast.errors`. Typed verbs per resource, discovery and the
dynamic client build on :meth:`Client.send`.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import httpx

from kfast import errors
from kfast._config import Config, load_config
from kfast._core import Core, Params, Read, RetryPolicy, Send, Sleep, Step
from kfast._transport import AsyncTransport
from kfast._warnings import LogOnceWarningHandler, WarningHandler

if TYPE_CHECKING:
    from kfast._dynamic import AsyncDynamicClient, DynamicClient, ResourceRef
    from kfast._resource import ResourceClient
    from kfast._resource_async import AsyncResourceClient
    from kfast._restmapper import AsyncRESTMapper, RESTMapper
    from kfast.discovery import AsyncDiscoveryClient, DiscoveryClient

__all__ = ["Client", "AsyncClient", "PatchType", "PATCH_CONTENT_TYPES"]

PatchType = Literal["merge", "strategic", "json", "apply"]
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",  # server-side apply; JSON is valid YAML
}
DEFAULT_TIMEOUT = 30.0


class _Common:
    """Construction and request building shared by both clients (no I/O)."""

    def __init__(
        self,
        config: Config | None,
        *,
        retry: RetryPolicy | None,
        warning_handler: WarningHandler | None | Literal["log-once"],
    ) -> None:
        self.config: Config = config if config is not None else load_config()
        handler: WarningHandler | None = (
            LogOnceWarningHandler() if isinstance(warning_handler, str) else warning_handler
        )
        self._core = Core(
            base_url=self.config.server,
            headers=self.config.default_headers(),
            limiter=self.config.rate_limiter,
            retry=retry or RetryPolicy(),
            warning_handler=handler,
            tls_server_name=self.config.tls_server_name,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    @property
    def namespace(self) -> str:
        """The default namespace for namespaced calls (the context's, or the pod's)."""
        return self.config.namespace

    @property
    def retry(self) -> RetryPolicy:
        return self._core.retry

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
        """The request a call would send (without credentials, which are added on send)."""
        return self._core.build_request(method, path, params=params, json=json, content=content, headers=headers)

    @staticmethod
    def _patch_headers(patch_type: PatchType, headers: Mapping[str, str] | None) -> dict[str, str]:
        try:
            ctype = PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"patch_type must be one of {', '.join(PATCH_CONTENT_TYPES)}") from None
        return {**(headers or {}), "Content-Type": ctype}


def _check_timeout(timeout: object) -> None:
    # httpx takes 0 and negative timeouts and fails every request with a confusing
    # ReadTimeout/ConnectTimeout later: refuse them where the mistake is made.
    if isinstance(timeout, httpx.Timeout):
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"timeout must be a positive, finite number of seconds, not {timeout!r}")


def _with_timeout(step: Send, timeout: httpx.Timeout) -> httpx.Request:
    # Requests built by Core (not by httpx.Client.build_request) carry no timeout, and
    # httpcore then waits forever: give them the client's unless the caller chose one.
    req = step.request
    if "timeout" not in req.extensions:
        req.extensions["timeout"] = timeout.as_dict()
    return req


class Client(_Common):
    """A synchronous Kubernetes API client. Thread-safe; use one per process and config.

    ``timeout`` (seconds, > 0, or an ``httpx.Timeout``) bounds connect, read, write and pool
    waits of each request (watches and followed logs set their own read timeout); 0, a
    negative or a non-finite number is a ValueError here. After :meth:`close`, calls raise
    :class:`kfast.errors.ClientClosedError`."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        warning_handler: WarningHandler | None | Literal["log-once"] = "log-once",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        _check_timeout(timeout)
        super().__init__(config, retry=retry, warning_handler=warning_handler)
        self._http = self.config.httpx_client(transport=transport, timeout=timeout)
        self._lazy_lock = threading.Lock()
        self._dynamic: DynamicClient | None = None

    def close(self) -> None:
        """Close the connections. A call made after this raises
        :class:`kfast.errors.ClientClosedError` (a ``RuntimeError``) without sending."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drive(self, steps: Generator[Step, Any, Any]) -> Any:
        reply: Any = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as stop:
                return stop.value
            reply = self._perform(step)

    def _perform(self, step: Step) -> Any:
        """Do what one step of :meth:`Core.call` asks; the reply (or httpx error) to send back."""
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        if isinstance(step, Read):
            try:
                step.response.read()
            except httpx.HTTPError as e:
                return e
            finally:
                step.response.close()
            return None
        if self._http.is_closed:
            raise errors.ClientClosedError("kfast.Client is closed")
        try:
            return self._http.send(_with_timeout(step, self._http.timeout), stream=step.stream)
        except httpx.HTTPError as e:
            return e

    def send(self, request: httpx.Request) -> httpx.Response:
        """Send a built request with rate limiting, retries and typed errors; body read."""
        resp: httpx.Response = self._drive(self._core.call(request, decode=False))
        return resp

    def open_stream(self, request: httpx.Request) -> httpx.Response:
        """Send a built request as :meth:`send` does (rate limit, retries, typed errors on
        open) and return the 2xx response with its body unread, for watches and logs. The
        caller reads it (``iter_bytes``) and must close it. A timeout in
        ``request.extensions["timeout"]`` (an ``httpx.Timeout.as_dict()``) wins over the
        client's: a quiet watch needs a read timeout longer than its timeoutSeconds."""
        resp: httpx.Response = self._drive(self._core.call(request, stream=True))
        return resp

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Call the API; return the decoded JSON body (None if empty, text if not JSON)."""
        req = self._core.build_request(method, path, params=params, json=json, content=content, headers=headers)
        return self._drive(self._core.call(req))

    def get(self, path: str, *, params: Params = None, headers: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, params=params, headers=headers)

    def post(self, path: str, json: Any = None, *, params: Params = None,
             headers: Mapping[str, str] | None = None) -> Any:
        return self.request("POST", path, params=params, json=json, headers=headers)

    def put(self, path: str, json: Any = None, *, params: Params = None,
            headers: Mapping[str, str] | None = None) -> Any:
        return self.request("PUT", path, params=params, json=json, headers=headers)

    def patch(self, path: str, json: Any = None, *, patch_type: PatchType = "merge", params: Params = None,
              headers: Mapping[str, str] | None = None) -> Any:
        return self.request("PATCH", path, params=params, json=json,
                            headers=self._patch_headers(patch_type, headers))

    def delete(self, path: str, *, params: Params = None, json: Any = None,
               headers: Mapping[str, str] | None = None) -> Any:
        return self.request("DELETE", path, params=params, json=json, headers=headers)

    def version(self) -> dict[str, Any]:
        """The server's ``/version`` (gitVersion, major, minor, platform ...)."""
        v: dict[str, Any] = self.get("/version")
        return v

    # -- discovery and any resource by name (built on first use) ---------------------------

    @property
    def discovery(self) -> DiscoveryClient:
        """This client's :class:`~kfast.DiscoveryClient` (kubectl's disk cache under
        ``~/.kube/cache/discovery``), created on first use and shared by :meth:`resource`."""
        with self._lazy_lock:
            if self._dynamic is None:
                from kfast._dynamic import DynamicClient
                from kfast.discovery import DiscoveryClient

                self._dynamic = DynamicClient(self, DiscoveryClient(self))
            return self._dynamic.mapper.discovery

    @property
    def mapper(self) -> RESTMapper:
        """The :class:`~kfast.RESTMapper` over :attr:`discovery`."""
        self.discovery  # noqa: B018 (creates it)
        assert self._dynamic is not None
        return self._dynamic.mapper

    def resource(self, ref: ResourceRef, *, metadata_only: bool = False) -> ResourceClient:
        """A :class:`~kfast.ResourceClient` for any resource, named as kubectl accepts
        (``"deploy"``, ``"deployments.apps"``, ``"Widget"``) or by GroupVersionResource,
        GroupVersionKind or APIResource. CRDs created at run time are found (discovery is
        refreshed once on a miss)."""
        from kfast._dynamic import resolve
        from kfast._resource import ResourceClient

        return ResourceClient(self, resolve(self.mapper, ref), metadata_only=metadata_only)


class AsyncClient(_Common):
    """The asyncio twin of :class:`Client`; the same methods, awaited."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        warning_handler: WarningHandler | None | Literal["log-once"] = "log-once",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        _check_timeout(timeout)
        super().__init__(config, retry=retry, warning_handler=warning_handler)
        cfg = self.config
        self._dynamic: AsyncDynamicClient | None = None
        self._http = httpx.AsyncClient(
            base_url=cfg.server,
            auth=cfg.auth(),
            transport=transport or AsyncTransport(cfg),
            timeout=timeout,
            headers=cfg.default_headers(),
            trust_env=False,
        )

    async def close(self) -> None:
        """Close the connections; later calls raise :class:`kfast.errors.ClientClosedError`."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _drive(self, steps: Generator[Step, Any, Any]) -> Any:
        reply: Any = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as stop:
                return stop.value
            reply = await self._perform(step)

    async def _perform(self, step: Step) -> Any:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        if isinstance(step, Read):
            try:
                await step.response.aread()
            except httpx.HTTPError as e:
                return e
            finally:
                await step.response.aclose()
            return None
        if self._http.is_closed:
            raise errors.ClientClosedError("kfast.AsyncClient is closed")
        try:
            return await self._http.send(_with_timeout(step, self._http.timeout), stream=step.stream)
        except httpx.HTTPError as e:
            return e

    async def send(self, request: httpx.Request) -> httpx.Response:
        resp: httpx.Response = await self._drive(self._core.call(request, decode=False))
        return resp

    async def open_stream(self, request: httpx.Request) -> httpx.Response:
        """The asyncio twin of :meth:`Client.open_stream`; close with ``await resp.aclose()``."""
        resp: httpx.Response = await self._drive(self._core.call(request, stream=True))
        return resp

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        req = self._core.build_request(method, path, params=params, json=json, content=content, headers=headers)
        return await self._drive(self._core.call(req))

    async def get(self, path: str, *, params: Params = None, headers: Mapping[str, str] | None = None) -> Any:
        return await self.request("GET", path, params=params, headers=headers)

    async def post(self, path: str, json: Any = None, *, params: Params = None,
                   headers: Mapping[str, str] | None = None) -> Any:
        return await self.request("POST", path, params=params, json=json, headers=headers)

    async def put(self, path: str, json: Any = None, *, params: Params = None,
                  headers: Mapping[str, str] | None = None) -> Any:
        return await self.request("PUT", path, params=params, json=json, headers=headers)

    async def patch(self, path: str, json: Any = None, *, patch_type: PatchType = "merge",
                    params: Params = None, headers: Mapping[str, str] | None = None) -> Any:
        return await self.request("PATCH", path, params=params, json=json,
                                  headers=self._patch_headers(patch_type, headers))

    async def delete(self, path: str, *, params: Params = None, json: Any = None,
                     headers: Mapping[str, str] | None = None) -> Any:
        return await self.request("DELETE", path, params=params, json=json, headers=headers)

    async def version(self) -> dict[str, Any]:
        v: dict[str, Any] = await self.get("/version")
        return v

    # -- discovery and any resource by name (built on first use) ---------------------------

    @property
    def discovery(self) -> AsyncDiscoveryClient:
        """This client's :class:`~kfast.AsyncDiscoveryClient`, created on first use."""
        if self._dynamic is None:
            from kfast._dynamic import AsyncDynamicClient
            from kfast.discovery import AsyncDiscoveryClient

            self._dynamic = AsyncDynamicClient(self, AsyncDiscoveryClient(self))
        return self._dynamic.mapper.discovery

    @property
    def mapper(self) -> AsyncRESTMapper:
        """The :class:`~kfast.AsyncRESTMapper` over :attr:`discovery`."""
        self.discovery  # noqa: B018 (creates it)
        assert self._dynamic is not None
        return self._dynamic.mapper

    async def resource(self, ref: ResourceRef, *, metadata_only: bool = False) -> AsyncResourceClient:
        """The asyncio twin of :meth:`Client.resource` (awaited: it may consult discovery)."""
        from kfast._dynamic import aresolve
        from kfast._resource_async import AsyncResourceClient

        return AsyncResourceClient(self, await aresolve(self.mapper, ref), metadata_only=metadata_only)
