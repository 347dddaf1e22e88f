"""Reading kubeconfig files into a :class:`~kfast._config.Config`.

Refreshed OIDC tokens are written back to the file that declared the user
(:func:`persist_auth_provider_config`), as kubectl does.

Merge rules (protocol.md, Config): for each cluster, user and context name the first file
that defines it wins; ``current-context`` comes from the first file that sets it; missing
files and empty entries are skipped. Relative paths (certificates, keys, token files, exec
commands) resolve against the directory of the file that declared them. Every error names
the file and the key.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import os
import stat
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from kfast._config import Config
from kfast._exec import ExecConfig, cluster_info
from kfast._oidc import OIDCConfig
from kfast.errors import ConfigError

__all__ = ["load_kubeconfig", "persist_auth_provider_config"]

# How long a writer waits for another one's lock file before giving up on this write.
LOCK_WAIT_SECONDS = 2.0

Entry = tuple[dict[str, Any], Path]


def load_kubeconfig(paths: list[Path], context: str | None = None, *, persist_auth: bool = True) -> Config:
    clusters: dict[str, Entry] = {}
    users: dict[str, Entry] = {}
    contexts: dict[str, Entry] = {}
    current: str | None = None
    loaded: list[Path] = []
    for path in paths:
        doc = _read_yaml(path)
        if doc is None:
            continue
        loaded.append(path)
        for key, into, inner in (("clusters", clusters, "cluster"), ("users", users, "user"),
                                 ("contexts", contexts, "context")):
            for i, entry in enumerate(_as_list(doc.get(key), path, key)):
                if entry is None:
                    continue  # an empty list item
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
    user_name = ctx.get("user")
    if user_name:
        if user_name not in users:
            raise ConfigError(f"{ctx_path}: context {name!r} names unknown user {user_name!r}")
        user, upath = users[user_name]
    cwhat = f"{cpath}: clusters[{cluster_name!r}].cluster"
    uwhat = f"{upath}: users[{user_name!r}].user"

    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise ConfigError(f"{cwhat}.server is missing")
    _check_server(server, cwhat)
    ca = _pem(cluster, "certificate-authority", cpath, cwhat)
    ca_file = None
    if cluster.get("certificate-authority") and not cluster.get("certificate-authority-data"):
        ca_file = str(_resolve(cpath, str(cluster["certificate-authority"])))  # re-read on rotation
    insecure = _bool(cluster, "insecure-skip-tls-verify", cwhat)
    proxy = cluster.get("proxy-url") or None
    if proxy is not None:
        _check_proxy(str(proxy), cwhat)

    cert = _pem(user, "client-certificate", upath, uwhat)
    key_pem = _pem(user, "client-key", upath, uwhat)
    cert_file = key_file = None
    if user.get("client-certificate") and user.get("client-key") and not user.get("client-certificate-data") \
            and not user.get("client-key-data"):
        # Both from files: keep the paths so a rotated pair is picked up without a restart.
        cert_file = str(_resolve(upath, str(user["client-certificate"])))
        key_file = str(_resolve(upath, str(user["client-key"])))
    token_file = user.get("tokenFile")
    if token_file:
        token_file = str(_resolve(upath, str(token_file)))
        if not Path(token_file).is_file():
            raise ConfigError(f"{uwhat}.tokenFile {token_file} does not exist")
    exec_cfg = None
    if user.get("exec"):
        exec_cfg = ExecConfig.parse(user["exec"], uwhat, str(upath.parent))
        if exec_cfg.provide_cluster_info:
            info = cluster_info(cluster, server, ca)
            exec_cfg = ExecConfig(**{**exec_cfg.__dict__, "cluster_info": info})
    oidc = None
    if user.get("auth-provider"):
        provider = user["auth-provider"]
        idp_ca = None
        if isinstance(provider, dict) and isinstance(provider.get("config"), dict):
            idp_ca = _pem(provider["config"], "idp-certificate-authority", upath, f"{uwhat}.auth-provider.config")
        oidc = OIDCConfig.parse(provider, uwhat, idp_ca)
        if persist_auth and user_name:
            # Absolute now: the process may change directory before the first refresh.
            oidc = dataclasses.replace(oidc, persist=functools.partial(
                persist_auth_provider_config, Path(os.path.abspath(upath)), str(user_name)))
    try:
        return Config(
            server=server,
            ca_pem=ca,
            ca_file=ca_file,
            client_cert_pem=cert,
            client_key_pem=key_pem,
            client_cert_file=cert_file,
            client_key_file=key_file,
            token=str(user["token"]) if user.get("token") else None,
            token_file=token_file,
            username=str(user["username"]) if user.get("username") else None,
            password=str(user["password"]) if user.get("password") else None,
            exec_config=exec_cfg,
            oidc_config=oidc,
            insecure_skip_tls_verify=insecure,
            tls_server_name=cluster.get("tls-server-name") or None,
            namespace=str(ctx.get("namespace") or "default"),
            proxy_url=str(proxy) if proxy else None,
            disable_compression=_bool(cluster, "disable-compression", cwhat),
            source=str(cpath),
            context=name,
        )
    except ConfigError as e:
        # Config names only its source; say which entries were combined.
        raise ConfigError(f"{e} (context {name!r}, user {user_name!r} from {upath})") from None


def _check_server(server: str, what: str) -> None:
    try:
        url = httpx.URL(server)
    except (httpx.InvalidURL, ValueError) as e:
        raise ConfigError(f"{what}.server {server!r} is not a URL ({e})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"{what}.server {server!r} must be an http(s) URL with a host")


def _check_proxy(proxy: str, what: str) -> None:
    url = httpx.URL(proxy)
    if url.scheme not in ("http", "https", "socks5", "socks5h"):
        raise ConfigError(f"{what}.proxy-url scheme {url.scheme!r} is not http, https or socks5")
    if url.scheme.startswith("socks"):
        import importlib.util

        if importlib.util.find_spec("socksio") is None:
            raise ConfigError(f"{what}.proxy-url is socks5, which needs 'pip install kfast[socks]'")


def _bool(section: dict[str, Any], key: str, what: str) -> bool:
    v = section.get(key, False)
    if not isinstance(v, bool):
        raise ConfigError(f"{what}.{key} must be true or false, not {v!r}")
    return v


def _read_yaml(path: Path) -> dict[str, Any] | None:
    import yaml  # type: ignore[import-untyped]

    try:
        text = path.read_text()
    except FileNotFoundError:
        return None  # missing files in $KUBECONFIG are skipped, like kubectl
    except OSError as e:
        raise ConfigError(f"{path}: cannot read kubeconfig ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text file (invalid UTF-8 at byte {e.start})") from e
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
            raise ConfigError(f"{what}.{key}-data is not valid base64") from e
    file = section.get(key)
    if file:
        return _read_file(_resolve(path, str(file)), what, key)
    return None


def persist_auth_provider_config(path: Path, user: str, values: Mapping[str, str]) -> None:
    """Store ``values`` in ``users[user].user.auth-provider.config`` of the kubeconfig at
    ``path``, keeping everything else in the file, as client-go's persister does.

    Safe against the other writers kubectl users have: it takes client-go's lock file
    (``<file>.lock``, created exclusively; waits up to :data:`LOCK_WAIT_SECONDS`), writes a
    temporary file in the same directory with the original's permissions, fsyncs it and
    renames it over the original (through a symlink, the file it points to is replaced), so
    a reader sees the old file or the new one, never half of one. YAML comments are not
    kept (kubectl drops them as well). Raises ConfigError or OSError when it cannot write.
    """
    import yaml

    target = Path(os.path.realpath(path))
    lock = target.with_name(target.name + ".lock")
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            break
        except FileExistsError:
            if time.monotonic() >= deadline:
                raise ConfigError(f"{target}: locked by another writer ({lock} exists)") from None
            time.sleep(0.05)
    try:
        doc = _read_yaml(target)
        entry = next((u for u in _as_list((doc or {}).get("users"), target, "users")
                      if isinstance(u, dict) and str(u.get("name")) == user), None)
        provider = ((entry or {}).get("user") or {}).get("auth-provider")
        if not isinstance(provider, dict):
            raise ConfigError(f"{target}: users[{user!r}] has no auth-provider any more; not rewritten")
        cfg = provider.setdefault("config", {})
        if not isinstance(cfg, dict):
            raise ConfigError(f"{target}: users[{user!r}].user.auth-provider.config must be a mapping")
        if all(cfg.get(k) == v for k, v in values.items()):
            return
        cfg.update(values)
        mode = stat.S_IMODE(target.stat().st_mode)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                yaml.safe_dump(doc, f, default_flow_style=False, sort_keys=False)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    finally:
        try:
            os.unlink(lock)
        except OSError:
            pass
