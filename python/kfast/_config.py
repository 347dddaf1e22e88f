"""Client configuration: where the API server is and how to authenticate to it.

Sources, in order: an explicit kubeconfig path, ``$KUBECONFIG`` (``:``-separated, first file
that defines a cluster/user/context wins), ``~/.kube/config``, then the in-cluster
service-account config. Exec plugins and OIDC are not implemented yet; :class:`Config` keeps
authentication in one place (:meth:`Config.auth`, an ``httpx.Auth``) so they slot in there.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from kfast._auth import BearerAuth
from kfast.errors import ConfigError

__all__ = ["Config", "load_config", "load_incluster_config", "load_kubeconfig"]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True, eq=False)
class Config:
    """Everything needed to reach one API server as one user.

    PEM material is held as bytes (``*-data`` fields are decoded, files are read eagerly so
    a broken path fails at load time). ``token_file`` is re-read while running because
    service-account tokens rotate.
    """

    server: str
    ca_pem: bytes | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    namespace: str = "default"
    proxy_url: str | None = None
    source: str = "<explicit>"
    context: str | None = None
    _ssl: list[ssl.SSLContext] = field(default_factory=list, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

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

    def __repr__(self) -> str:
        secrets = [
            name
            for name, v in (("token", self.token), ("client_key", self.client_key_pem))
            if v
        ]
        return (
            f"Config(server={self.server!r}, context={self.context!r}, namespace={self.namespace!r}, "
            f"source={self.source!r}, secrets={'[REDACTED ' + ','.join(secrets) + ']' if secrets else 'none'})"
        )

    @classmethod
    def for_url(cls, url: str, *, token: str | None = None, namespace: str = "default") -> Config:
        """A config for a bare URL (the embedded simulator, tests): no TLS material."""
        return cls(server=url.rstrip("/"), token=token, namespace=namespace, source=url)

    @property
    def is_https(self) -> bool:
        return self.server.startswith("https://")

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The one SSLContext this config uses, shared by httpx and the watch wire path."""
        with self._lock:
            if not self._ssl:
                self._ssl.append(self._build_ssl_context())
            return self._ssl[0]

    def _build_ssl_context(self) -> ssl.SSLContext:
        # PROTOCOL_TLS_CLIENT verifies hostnames and certificates by default. With a cluster CA
        # we trust only that CA (as kubectl does), not the system roots as well.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        # The watch path speaks HTTP/1.1 itself; httpx uses h11 too, so both agree on ALPN.
        ctx.set_alpn_protocols(["http/1.1"])
        if self.insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_pem:
            try:
                ctx.load_verify_locations(cadata=self.ca_pem.decode("ascii", "replace"))
            except (ssl.SSLError, ValueError) as e:
                raise ConfigError(f"{self.source}: certificate-authority is not valid PEM") from e
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if self.client_cert_pem and self.client_key_pem:
            _load_cert_chain(ctx, self.client_cert_pem, self.client_key_pem, self.source)
        return ctx

    def auth(self) -> httpx.Auth | None:
        """The request authenticator (bearer token for now; exec/OIDC plug in here)."""
        if self.token or self.token_file:
            return BearerAuth(token=self.token, token_file=self.token_file)
        return None

    def proxy_for(self, url: str) -> str | None:
        """The proxy a request to ``url`` would go through (config first, then environment)."""
        if self.proxy_url:
            return self.proxy_url
        import urllib.request

        proxies = urllib.request.getproxies_environment()
        host = httpx.URL(url).host
        if proxies.get("no") and urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]
            return None
        scheme = httpx.URL(url).scheme
        return proxies.get(scheme) or proxies.get("all")

    def httpx_client(self, *, transport: httpx.BaseTransport | None = None, timeout: float = 30.0) -> httpx.Client:
        """An httpx client for REST calls that shares this config's SSLContext and auth."""
        return httpx.Client(
            base_url=self.server,
            verify=self.ssl_context if self.is_https else True,
            auth=self.auth(),
            proxy=self.proxy_url,
            transport=transport,
            timeout=timeout,
            headers={"Accept": "application/json", "User-Agent": "kfast"},
        )

    def with_namespace(self, namespace: str) -> Config:
        return replace(self, namespace=namespace, _ssl=[], _lock=threading.Lock())


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes, source: str) -> None:
    # ssl only loads certificates from files; write them 0600 into a private temp dir and
    # remove them at once so key material does not linger on disk.
    with tempfile.TemporaryDirectory(prefix="kfast-") as d:
        cp, kp = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        for p, data in ((cp, cert), (kp, key)):
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        try:
            ctx.load_cert_chain(cp, kp)
        except ssl.SSLError as e:
            raise ConfigError(f"{source}: client certificate/key cannot be loaded ({e.reason})") from e


def load_config(kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None) -> Config:
    """Load the client config the way kubectl does (kubeconfig, else in-cluster)."""
    if kubeconfig is not None:
        return load_kubeconfig([Path(kubeconfig)], context)
    env = os.environ.get("KUBECONFIG")
    if env:
        paths = [Path(p) for p in env.split(os.pathsep) if p]
        if any(p.exists() for p in paths):
            return load_kubeconfig(paths, context)
    default = Path.home() / ".kube" / "config"
    if default.exists():
        return load_kubeconfig([default], context)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return load_incluster_config()
    raise ConfigError("no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a cluster")


def load_incluster_config(sa_dir: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR) -> Config:
    """The service-account config a pod gets (env vars + mounted token/CA/namespace)."""
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
    ca = _read_file(ca_path, str(d), "ca.crt") if ca_path.is_file() else None
    ns = ns_path.read_text().strip() if ns_path.is_file() else "default"
    return Config(
        server=f"https://{host}:{port}",
        ca_pem=ca,
        token_file=str(token_path),
        namespace=ns or "default",
        source=f"in-cluster ({d})",
    )


def load_kubeconfig(paths: list[Path], context: str | None = None) -> Config:
    """Merge kubeconfig files (first definition of each name wins) and resolve one context."""
    clusters: dict[str, tuple[dict[str, Any], Path]] = {}
    users: dict[str, tuple[dict[str, Any], Path]] = {}
    contexts: dict[str, tuple[dict[str, Any], Path]] = {}
    current: str | None = None
    loaded: list[Path] = []
    for path in paths:
        doc = _read_yaml(path)
        if doc is None:
            continue
        loaded.append(path)
        for key, into, inner in (("clusters", clusters, "cluster"), ("users", users, "user"), ("contexts", contexts, "context")):
            for i, entry in enumerate(_as_list(doc.get(key), path, key)):
                if not isinstance(entry, dict) or not entry.get("name"):
                    raise ConfigError(f"{path}: {key}[{i}] has no 'name'")
                body = entry.get(inner) or {}
                if not isinstance(body, dict):
                    raise ConfigError(f"{path}: {key}[{i}].{inner} must be a mapping")
                into.setdefault(str(entry["name"]), (body, path))
        if current is None and doc.get("current-context"):
            current = str(doc["current-context"])
    if not loaded:
        raise ConfigError(f"no kubeconfig file found among {', '.join(map(str, paths))}")
    name = context or current
    where = loaded[0]
    if not name:
        raise ConfigError(f"{where}: no 'current-context' and no context given")
    if name not in contexts:
        raise ConfigError(f"{where}: context {name!r} not found in 'contexts'")
    ctx, ctx_path = contexts[name]
    cluster_name = ctx.get("cluster")
    if not cluster_name or cluster_name not in clusters:
        raise ConfigError(f"{ctx_path}: context {name!r} names unknown cluster {cluster_name!r}")
    cluster, cpath = clusters[cluster_name]
    user: dict[str, Any] = {}
    upath = ctx_path
    if ctx.get("user"):
        if ctx["user"] not in users:
            raise ConfigError(f"{ctx_path}: context {name!r} names unknown user {ctx['user']!r}")
        user, upath = users[ctx["user"]]
    if any(k in user for k in ("exec", "auth-provider")):
        # Declared now so the failure is clear; implemented with the auth issue.
        raise ConfigError(f"{upath}: user {ctx['user']!r}: exec/auth-provider credentials are not supported yet")

    server = cluster.get("server")
    if not server:
        raise ConfigError(f"{cpath}: clusters[{cluster_name!r}].cluster.server is missing")
    ca = _pem(cluster, "certificate-authority", cpath, f"clusters[{cluster_name!r}]")
    cert = _pem(user, "client-certificate", upath, f"users[{ctx.get('user')!r}]")
    key_pem = _pem(user, "client-key", upath, f"users[{ctx.get('user')!r}]")
    token_file = user.get("tokenFile")
    if token_file:
        token_file = str(_resolve(upath, str(token_file)))
        if not Path(token_file).is_file():
            raise ConfigError(f"{upath}: users[{ctx.get('user')!r}].tokenFile {token_file} does not exist")
    return Config(
        server=str(server).rstrip("/"),
        ca_pem=ca,
        client_cert_pem=cert,
        client_key_pem=key_pem,
        token=str(user["token"]) if user.get("token") else None,
        token_file=token_file,
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
        tls_server_name=cluster.get("tls-server-name") or None,
        namespace=str(ctx.get("namespace") or "default"),
        proxy_url=cluster.get("proxy-url") or None,
        source=str(cpath),
        context=name,
    )


def _read_yaml(path: Path) -> dict[str, Any] | None:
    import yaml  # type: ignore[import-untyped]

    try:
        text = path.read_text()
    except FileNotFoundError:
        return None  # missing files in $KUBECONFIG are skipped, like kubectl
    except OSError as e:
        raise ConfigError(f"{path}: cannot read kubeconfig ({e.strerror})") from e
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a kubeconfig must be a YAML mapping")
    return doc


def _as_list(v: Any, path: Path, key: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise ConfigError(f"{path}: '{key}' must be a list")
    return v


def _resolve(base_file: Path, p: str) -> Path:
    pp = Path(os.path.expanduser(p))
    return pp if pp.is_absolute() else base_file.parent / pp


def _read_file(p: Path, where: str, key: str) -> bytes:
    try:
        return p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{where}: {key} file {p} cannot be read ({e.strerror})") from e


def _pem(section: dict[str, Any], key: str, path: Path, what: str) -> bytes | None:
    data = section.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except (binascii.Error, ValueError) as e:
            raise ConfigError(f"{path}: {what}.{key}-data is not valid base64") from e
    file = section.get(key)
    if file:
        return _read_file(_resolve(path, str(file)), f"{path}: {what}", key)
    return None
