"""Client configuration: where the API server is and how to authenticate to it.

Sources, in order: an explicit kubeconfig path, ``$KUBECONFIG`` (``:``-separated, first file
that defines a cluster/user/context wins), ``~/.kube/config``, then the in-cluster
service-account config. Parsing lives in :mod:`kfast._kubeconfig`; this module holds the
:class:`Config` every client, informer and watch shares, together with the run-time state
that must be shared too: the one authenticator (token caches, exec results), the TLS state
(one SSLContext per client certificate) and the rate limiter.
"""

from __future__ import annotations

import os
import ssl
import threading
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from kfast._auth import BasicAuth, BearerAuth, ExecAuth, OIDCAuth
from kfast._exec import ExecConfig, ExecProvider
from kfast._oidc import OIDCConfig, OIDCProvider
from kfast._ratelimit import DEFAULT_BURST, DEFAULT_QPS, TokenBucket
from kfast._tls import TLSState, build_proxy_ssl_context
from kfast.errors import ConfigError

__all__ = ["Config", "load_config", "load_incluster_config", "load_kubeconfig"]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class _Runtime:
    """Lazily built, shared by copies made with :meth:`Config.with_namespace`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.auth: httpx.Auth | None = None
        self.auth_built = False
        self.exec: ExecProvider | None = None
        self.tls: TLSState | None = None
        self.proxy_tls: ssl.SSLContext | None = None
        self.limiter: TokenBucket | None = None
        self.limiter_built = False


@dataclass(frozen=True, eq=False)
class Config:
    """Everything needed to reach one API server as one user.

    PEM material is held as bytes (``*-data`` fields are decoded, files are read eagerly so
    a broken path fails at load time; ``client_cert_file``/``client_key_file`` and
    ``ca_file`` are kept so a rotated pair or CA bundle is picked up for new connections).
    ``token_file`` is re-read while running because service-account tokens rotate.
    ``qps``/``burst`` configure the client-side rate limiter (``qps=None`` turns it off).

    ``proxy_url`` (kubeconfig ``proxy-url``; else ``HTTPS_PROXY``/``NO_PROXY`` from the
    environment) may be ``http://``, ``https://`` or ``socks5://``; REST calls and watches
    both go through it. An ``https://`` proxy is itself reached over TLS, and its
    certificate is checked against the proxy's host name and trusted if it chains to the
    system trust store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` override it, as for Go), to the
    cluster's certificate-authority (client-go verifies the proxy with the cluster's TLS
    settings, so what kubectl accepts works here too) or to ``proxy_ca_pem``: kubeconfig has
    no field for a proxy CA, so that one is set in code, e.g.
    ``cfg.replace(proxy_ca_pem=Path("proxy-ca.pem").read_bytes())``. The cluster's
    ``tls-server-name``, client certificate and ``insecure-skip-tls-verify`` apply to the API
    server only, never to the proxy (client-go applies them to both, a known problem:
    kubernetes/kubernetes#104779).
    An unreachable proxy, a failed handshake with it or a refused tunnel raise
    :class:`kfast.errors.ProxyError`.
    """

    server: str
    ca_pem: bytes | None = None
    ca_file: str | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = field(default=None, repr=False)
    client_cert_file: str | None = None
    client_key_file: str | None = None
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    exec_config: ExecConfig | None = None
    oidc_config: OIDCConfig | None = field(default=None, repr=False)
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    namespace: str = "default"
    proxy_url: str | None = None
    proxy_ca_pem: bytes | None = None
    disable_compression: bool = False
    qps: float | None = DEFAULT_QPS
    burst: int = DEFAULT_BURST
    source: str = "<explicit>"
    context: str | None = None
    # Not an init field, so dataclasses.replace() gives a copy with other credentials its
    # own caches; with_namespace() shares them on purpose.
    _rt: _Runtime = field(default_factory=_Runtime, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.server:
            raise ConfigError(f"{self.source}: cluster has no 'server'")
        if self.insecure_skip_tls_verify and self.ca_pem:
            # client-go refuses this combination; silently ignoring either half hides a mistake.
            raise ConfigError(
                f"{self.source}: 'insecure-skip-tls-verify' together with a certificate authority"
            )
        if bool(self.client_cert_pem) != bool(self.client_key_pem):
            raise ConfigError(f"{self.source}: client certificate and key must be given together")
        if (self.token or self.token_file) and (self.username or self.password):
            raise ConfigError(f"{self.source}: a token and username/password cannot both be set")
        if self.exec_config and self.oidc_config:
            raise ConfigError(f"{self.source}: 'exec' and 'auth-provider' cannot both be set")
        if self.proxy_url:
            scheme = httpx.URL(self.proxy_url).scheme
            if scheme not in ("http", "https", "socks5", "socks5h"):
                raise ConfigError(f"{self.source}: proxy-url scheme {scheme!r} is not http, https or socks5")

    def __repr__(self) -> str:
        secrets = [
            name
            for name, v in (("token", self.token), ("client_key", self.client_key_pem),
                            ("password", self.password), ("oidc", self.oidc_config))
            if v
        ]
        auth = "exec" if self.exec_config else None
        return (
            f"Config(server={self.server!r}, context={self.context!r}, namespace={self.namespace!r}, "
            f"source={self.source!r}, {'auth=exec, ' if auth else ''}"
            f"secrets={'[REDACTED ' + ','.join(secrets) + ']' if secrets else 'none'})"
        )

    @classmethod
    def for_url(cls, url: str, *, token: str | None = None, namespace: str = "default") -> Config:
        """A config for a bare URL (the embedded simulator, tests): no TLS material."""
        return cls(server=url.rstrip("/"), token=token, namespace=namespace, source=url)

    @property
    def is_https(self) -> bool:
        return self.server.startswith("https://")

    # -- shared run-time state -------------------------------------------------------

    def _exec_provider(self) -> ExecProvider | None:
        rt = self._rt
        if self.exec_config is not None and rt.exec is None:
            with rt.lock:
                if rt.exec is None:
                    rt.exec = ExecProvider(self.exec_config)
        return rt.exec

    def _tls(self) -> TLSState:
        rt = self._rt
        with rt.lock:
            if rt.tls is None:
                static = (self.client_cert_pem, self.client_key_pem) \
                    if self.client_cert_pem and self.client_key_pem else None
                files = (self.client_cert_file, self.client_key_file) \
                    if self.client_cert_file and self.client_key_file else None
                rt.tls = TLSState(ca_pem=self.ca_pem, insecure=self.insecure_skip_tls_verify,
                                  source=self.source, static_cert=static, cert_files=files,
                                  dynamic_cert=self._exec_cert if self.exec_config else None,
                                  ca_file=self.ca_file if self.ca_pem else None,
                                  server_name=self.tls_server_name)
            return rt.tls

    def _exec_cert(self) -> tuple[bytes, bytes] | None:
        provider = self._exec_provider()
        cred = provider.last() if provider is not None else None
        if cred is not None and cred.client_cert_pem and cred.client_key_pem:
            return (cred.client_cert_pem, cred.client_key_pem)
        return None

    @property
    def proxy_ssl_context(self) -> ssl.SSLContext:
        """The SSLContext for the TLS connection to an ``https://`` proxy (built once, with
        the cluster CA as loaded: a rotated ``ca_file`` reaches the API server's context only)."""
        rt = self._rt
        with rt.lock:
            if rt.proxy_tls is None:
                rt.proxy_tls = build_proxy_ssl_context(self.ca_pem, self.proxy_ca_pem, self.source)
            return rt.proxy_tls

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The SSLContext for the next connection, shared by httpx and the watch wire path.

        The same object every time until the client certificate changes (rotated files, a
        new exec credential)."""
        return self._tls().context()

    def auth(self) -> httpx.Auth | None:
        """The request authenticator, one per Config (so token and exec caches are shared).

        Precedence as in client-go: a token (or token file) first, then an exec plugin, then
        the oidc auth-provider, then username/password."""
        rt = self._rt
        if not rt.auth_built:
            exec_provider = self._exec_provider()
            with rt.lock:
                if not rt.auth_built:
                    rt.auth = self._make_auth(exec_provider)
                    rt.auth_built = True
        return rt.auth

    def _make_auth(self, exec_provider: ExecProvider | None) -> httpx.Auth | None:
        if self.token or self.token_file:
            return BearerAuth(token=self.token, token_file=self.token_file)
        if exec_provider is not None:
            return ExecAuth(exec_provider)
        if self.oidc_config is not None:
            return OIDCAuth(OIDCProvider(self.oidc_config))
        if self.username or self.password:
            return BasicAuth(self.username or "", self.password or "")
        return None

    @property
    def rate_limiter(self) -> TokenBucket | None:
        """The token bucket every request and watch start made with this config draws from."""
        rt = self._rt
        with rt.lock:
            if not rt.limiter_built:
                rt.limiter = TokenBucket(self.qps, self.burst) if self.qps else None
                rt.limiter_built = True
            return rt.limiter

    def proxy_for(self, url: str) -> str | None:
        """The proxy a request to ``url`` would go through (config first, then environment)."""
        if self.proxy_url:
            return self.proxy_url
        proxies = urllib.request.getproxies_environment()
        host = httpx.URL(url).host
        if proxies.get("no") and urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]
            return None
        scheme = httpx.URL(url).scheme
        return proxies.get(scheme) or proxies.get("all")

    def default_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "kfast"}
        if self.disable_compression:
            headers["Accept-Encoding"] = "identity"
        return headers

    def httpx_client(self, *, transport: httpx.BaseTransport | None = None,
                     timeout: float | httpx.Timeout = 30.0) -> httpx.Client:
        """An httpx client for REST calls that shares this config's SSLContext and auth."""
        from kfast._transport import SyncTransport

        return httpx.Client(
            base_url=self.server,
            auth=self.auth(),
            transport=transport or SyncTransport(self),
            timeout=timeout,
            headers=self.default_headers(),
            trust_env=False,  # the transport applies proxy-url or the environment itself
        )

    def with_namespace(self, namespace: str) -> Config:
        """The same user and cluster (sharing credentials and TLS), another default namespace."""
        copy = replace(self, namespace=namespace)
        object.__setattr__(copy, "_rt", self._rt)
        return copy

    def replace(self, **changes: Any) -> Config:
        """A copy with fields changed; credentials and TLS state are built afresh."""
        return replace(self, **changes)


def load_config(kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None, *,
                persist_auth: bool = True) -> Config:
    """Load the client config the way kubectl does (kubeconfig, else in-cluster).

    ``persist_auth``: write refreshed OIDC tokens back to the kubeconfig file that declared
    the user, as kubectl does (see :func:`kfast._kubeconfig.persist_auth_provider_config`);
    False keeps them in memory and never writes the file."""
    from kfast._kubeconfig import load_kubeconfig

    if kubeconfig is not None:
        return load_kubeconfig([Path(kubeconfig)], context, persist_auth=persist_auth)
    env = os.environ.get("KUBECONFIG")
    if env:
        paths = [Path(p) for p in env.split(os.pathsep) if p]
        if any(p.exists() for p in paths):
            return load_kubeconfig(paths, context, persist_auth=persist_auth)
    default = Path.home() / ".kube" / "config"
    if default.exists():
        return load_kubeconfig([default], context, persist_auth=persist_auth)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return load_incluster_config()
    raise ConfigError("no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a cluster")


def load_kubeconfig(paths: list[Path], context: str | None = None, *, persist_auth: bool = True) -> Config:
    """Merge kubeconfig files (first definition of each name wins) and resolve one context."""
    from kfast._kubeconfig import load_kubeconfig as load

    return load(paths, context, persist_auth=persist_auth)


def load_incluster_config(sa_dir: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR) -> Config:
    """The service-account config a pod gets (env vars + mounted token/CA/namespace).

    The token is read through ``token_file``, so it is re-read as the kubelet rotates it; the
    CA bundle through ``ca_file``, re-checked for new connections when it changes on disk."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ConfigError("in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    d = Path(sa_dir)
    token_path = d / "token"
    if not token_path.is_file():
        raise ConfigError(f"in-cluster: token file {token_path} is missing")
    ca_path = d / "ca.crt"
    ns_path = d / "namespace"
    try:
        ca = ca_path.read_bytes() if ca_path.is_file() else None
        ns = ns_path.read_text().strip() if ns_path.is_file() else "default"
    except OSError as e:
        raise ConfigError(f"in-cluster: {e.filename} cannot be read ({e.strerror})") from e
    return Config(
        server=f"https://{host}:{port}",
        ca_pem=ca,
        ca_file=str(ca_path) if ca is not None else None,  # re-read when the CA rotates
        token_file=str(token_path),
        namespace=ns or "default",
        source=f"in-cluster ({d})",
    )
