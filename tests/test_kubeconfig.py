"""Kubeconfig loading beyond the basics in test_config.py: merge rules over several files,
every cluster and user field, rotation of files on disk, in-cluster token rotation."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import kfast._auth as auth_mod
import kfast._tls as tls_mod
from kfast import Client, errors, load_config, load_incluster_config
from kfast._auth import BasicAuth, authorize

from _pki import Pki, _make_pki


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def write(path: Path, **doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", **doc}))
    return path


def single(path: Path, cluster: dict[str, Any], user: dict[str, Any] | None = None, **ctx: Any) -> Path:
    return write(path, **{"current-context": "c"},
                 clusters=[{"name": "k", "cluster": cluster}],
                 users=[{"name": "u", "user": user or {}}],
                 contexts=[{"name": "c", "context": {"cluster": "k", "user": "u", **ctx}}])


def test_merge_first_file_wins_per_key_and_current_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(tmp_path / "a" / "config",
              clusters=[{"name": "shared", "cluster": {"server": "https://from-a:6443"}}],
              users=[{"name": "ua", "user": {"token": "token-a"}}],
              contexts=[{"name": "ctx-b", "context": {"cluster": "shared", "user": "ua", "namespace": "from-a"}}])
    b = write(tmp_path / "b" / "config", **{"current-context": "ctx-b"},
              clusters=[{"name": "shared", "cluster": {"server": "https://from-b:6443"}},
                        {"name": "only-b", "cluster": {"server": "https://only-b:6443"}}],
              users=[{"name": "ua", "user": {"token": "token-b"}}, None],
              contexts=[{"name": "ctx-b", "context": {"cluster": "only-b", "user": "ua"}},
                        {"name": "ctx-only-b", "context": {"cluster": "only-b"}}])
    c = write(tmp_path / "c" / "config", **{"current-context": "ctx-only-b"})
    empty = tmp_path / "empty"
    empty.write_text("")
    paths = [str(empty), "", str(tmp_path / "missing"), str(a), str(b), str(c)]
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(paths))
    cfg = load_config()
    # current-context from b (first to set it); the context itself from a (first to define it)
    assert cfg.context == "ctx-b" and cfg.namespace == "from-a"
    assert cfg.server == "https://from-a:6443" and cfg.token == "token-a"
    other = load_config(context="ctx-only-b")
    assert other.server == "https://only-b:6443" and other.auth() is None


def test_relative_paths_resolve_against_the_declaring_file(tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    # The cluster is declared in one file, the user in another, in different directories.
    (tmp_path / "cl" / "pki").mkdir(parents=True)
    (tmp_path / "cl" / "pki" / "ca.crt").write_bytes(pki.ca_pem)
    (tmp_path / "us" / "creds").mkdir(parents=True)
    (tmp_path / "us" / "creds" / "tok").write_text("tok-from-file\n")
    cl = write(tmp_path / "cl" / "config", clusters=[{"name": "k", "cluster": {
        "server": "https://127.0.0.1:6443", "certificate-authority": "pki/ca.crt"}}])
    us = write(tmp_path / "us" / "config", **{"current-context": "c"},
               users=[{"name": "u", "user": {"tokenFile": "creds/tok"}}],
               contexts=[{"name": "c", "context": {"cluster": "k", "user": "u"}}])
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(cl), str(us)]))
    cfg = load_config()
    assert cfg.ca_pem == pki.ca_pem and cfg.token_file == str(tmp_path / "us" / "creds" / "tok")
    assert authorize(cfg.auth(), httpx.Request("GET", cfg.server)).headers["Authorization"] == "Bearer tok-from-file"


@pytest.mark.parametrize("server", ["https://10.1.2.3:6443", "https://[fd00::10]:6443", "https://api.example.com",
                                    "http://localhost:8080/prefix"])
def test_server_forms(tmp_path: Path, server: str) -> None:
    cfg = load_config(single(tmp_path / "config", {"server": server}))
    assert cfg.server == server
    assert Client(cfg).build_request("GET", "/api").url == httpx.URL(server + "/api")


@pytest.mark.parametrize(("cluster", "needle"), [
    ({"server": "ftp://h"}, "server"),
    ({"server": "https://h", "proxy-url": "gopher://p:1"}, "proxy-url"),
    ({"server": "https://h", "disable-compression": "yes"}, "disable-compression"),
    ({"server": "https://h", "insecure-skip-tls-verify": True, "certificate-authority": "ca.crt"},
     "insecure-skip-tls-verify"),
])
def test_bad_cluster_fields(tmp_path: Path, pki: Pki, cluster: dict[str, Any], needle: str) -> None:
    (tmp_path / "ca.crt").write_bytes(pki.ca_pem)
    kc = single(tmp_path / "config", cluster)
    with pytest.raises(errors.ConfigError) as ei:
        load_config(kc)
    assert needle in str(ei.value) and str(kc) in str(ei.value)


def test_insecure_without_ca(tmp_path: Path) -> None:
    import ssl

    cfg = load_config(single(tmp_path / "config", {"server": "https://h", "insecure-skip-tls-verify": True}))
    assert cfg.ssl_context.verify_mode == ssl.CERT_NONE and not cfg.ssl_context.check_hostname


def test_proxy_url_and_disable_compression(tmp_path: Path) -> None:
    cfg = load_config(single(tmp_path / "config", {"server": "https://h", "proxy-url": "https://proxy:3129",
                                                   "disable-compression": True}))
    assert cfg.proxy_url == "https://proxy:3129" and cfg.proxy_for(cfg.server) == "https://proxy:3129"
    assert cfg.default_headers()["Accept-Encoding"] == "identity"
    req = Client(cfg).build_request("GET", "/api")
    assert req.headers["Accept-Encoding"] == "identity"
    plain = load_config(single(tmp_path / "c2", {"server": "https://h"}))
    assert "Accept-Encoding" not in plain.default_headers()


def test_username_password(tmp_path: Path) -> None:
    cfg = load_config(single(tmp_path / "config", {"server": "https://h"}, {"username": "bob", "password": "hunter2"}))
    auth = cfg.auth()
    assert isinstance(auth, BasicAuth)
    got = authorize(auth, httpx.Request("GET", "https://h/")).headers["Authorization"]
    assert got == "Basic " + b64(b"bob:hunter2")
    assert "hunter2" not in repr(cfg) and "hunter2" not in repr(auth)
    with pytest.raises(errors.ConfigError, match="username/password"):
        load_config(single(tmp_path / "c2", {"server": "https://h"}, {"token": "t", "username": "bob"}))


def test_unknown_cluster_and_user(tmp_path: Path) -> None:
    kc = write(tmp_path / "config", **{"current-context": "c"},
               clusters=[{"name": "k", "cluster": {"server": "https://h"}}],
               contexts=[{"name": "c", "context": {"cluster": "k", "user": "ghost"}},
                         {"name": "d", "context": {"cluster": "nowhere"}}])
    with pytest.raises(errors.ConfigError, match=r"unknown user 'ghost'"):
        load_config(kc)
    with pytest.raises(errors.ConfigError, match=r"unknown cluster 'nowhere'"):
        load_config(kc, context="d")


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        kc = tmp_path / "dir-not-file"
        kc.mkdir()  # root reads any file; a directory cannot be read as one
    else:
        kc = single(tmp_path / "config", {"server": "https://h"})
        kc.chmod(0)
    with pytest.raises(errors.ConfigError, match="cannot read kubeconfig") as ei:
        load_config(kc)
    assert str(kc) in str(ei.value)


def test_client_cert_files_rotate_on_disk(tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tls_mod, "CERT_FILE_CHECK_SECONDS", 0.0)
    (tmp_path / "c.crt").write_bytes(pki.client_cert_pem)
    (tmp_path / "c.key").write_bytes(pki.client_key_pem)
    cfg = load_config(single(tmp_path / "config", {"server": "https://h", "certificate-authority-data": b64(pki.ca_pem)},
                             {"client-certificate": "c.crt", "client-key": "c.key"}))
    first = cfg.ssl_context
    assert cfg.ssl_context is first  # unchanged files: same context
    other = _make_pki()
    (tmp_path / "c.crt").write_bytes(other.client_cert_pem)  # half-way: new cert, old key
    assert cfg.ssl_context is first
    (tmp_path / "c.key").write_bytes(other.client_key_pem)
    second = cfg.ssl_context
    assert second is not first and cfg.ssl_context is second
    # the transport builds its next pool on the new context
    with Client(cfg) as c:
        transport = c._http._transport
        transport.pool()  # type: ignore[attr-defined]
        assert transport.ssl_context is second  # type: ignore[attr-defined]


def test_in_cluster_token_rotation(tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("gen-1")
    (sa / "ca.crt").write_bytes(pki.ca_pem)
    (sa / "namespace").write_text("team")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    cfg = load_incluster_config(sa)
    assert cfg.server == "https://[fd00::1]:6443" and cfg.namespace == "team"
    assert Client(cfg).namespace == "team"

    def bearer() -> str:
        return authorize(cfg.auth(), httpx.Request("GET", cfg.server)).headers["Authorization"]

    assert bearer() == "Bearer gen-1"
    # kubelet rotates projected tokens by swapping a symlinked directory; a rename is the same
    (sa / "token.new").write_text("gen-2")
    shutil.move(str(sa / "token.new"), str(sa / "token"))
    assert bearer() == "Bearer gen-1"  # re-read about once a minute, not per request
    monkeypatch.setattr(auth_mod, "TOKEN_FILE_REFRESH_SECONDS", 0.0)
    assert bearer() == "Bearer gen-2"


def test_non_utf8_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    import kfast

    p = tmp_path / "config"
    p.write_bytes(b"apiVersion: v1\nclusters: \xff\xfe\n")
    with pytest.raises(kfast.errors.ConfigError, match="invalid UTF-8"):
        kfast.load_config(str(p))
