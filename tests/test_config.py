from __future__ import annotations

import base64
import os
import ssl
from pathlib import Path

import httpx
import pytest
import yaml

from kfast import Config, errors, load_config
from kfast._auth import BearerAuth, authorize
from kfast._config import load_incluster_config

from _pki import Pki


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def write_kubeconfig(path: Path, *, cluster: dict, user: dict, namespace: str | None = None,
                     current: str | None = "ctx", extra_contexts: list | None = None) -> Path:
    ctx: dict = {"cluster": "c1", "user": "u1"}
    if namespace:
        ctx["namespace"] = namespace
    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c1", "cluster": cluster}],
        "users": [{"name": "u1", "user": user}],
        "contexts": [{"name": "ctx", "context": ctx}, *(extra_contexts or [])],
    }
    if current:
        doc["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_relative_files_resolve_against_kubeconfig_dir(tmp_path: Path, pki: Pki) -> None:
    d = tmp_path / "kube"
    (d / "certs").mkdir(parents=True)
    (d / "certs" / "ca.crt").write_bytes(pki.ca_pem)
    (d / "certs" / "c.crt").write_bytes(pki.client_cert_pem)
    (d / "certs" / "c.key").write_bytes(pki.client_key_pem)
    kc = write_kubeconfig(d / "config", cluster={"server": "https://127.0.0.1:6443/", "certificate-authority": "certs/ca.crt"},
                          user={"client-certificate": "certs/c.crt", "client-key": "certs/c.key"}, namespace="team-a")
    cfg = load_config(kc)
    assert cfg.server == "https://127.0.0.1:6443"
    assert cfg.ca_pem == pki.ca_pem and cfg.client_cert_pem == pki.client_cert_pem
    assert cfg.namespace == "team-a" and cfg.context == "ctx"
    ctx = cfg.ssl_context
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.get_ca_certs()[0]["subject"] == ((("commonName", "kfast-test-ca"),),)
    assert cfg.ssl_context is ctx  # one per Config


def test_data_fields(tmp_path: Path, pki: Pki) -> None:
    kc = write_kubeconfig(tmp_path / "config",
                          cluster={"server": "https://k:6443", "certificate-authority-data": b64(pki.ca_pem),
                                   "tls-server-name": "kfast.test"},
                          user={"client-certificate-data": b64(pki.client_cert_pem),
                                "client-key-data": b64(pki.client_key_pem)})
    cfg = load_config(kc)
    assert cfg.tls_server_name == "kfast.test" and cfg.client_key_pem == pki.client_key_pem
    assert cfg.ssl_context.get_ca_certs()


def test_token_and_token_file(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("file-token\n")
    kc = write_kubeconfig(tmp_path / "config", cluster={"server": "http://h:1"}, user={"tokenFile": "tok"})
    cfg = load_config(kc)
    assert cfg.token_file == str(tmp_path / "tok")
    req = authorize(cfg.auth(), httpx.Request("GET", "http://h:1/api"))
    assert req.headers["Authorization"] == "Bearer file-token"
    kc2 = write_kubeconfig(tmp_path / "c2", cluster={"server": "http://h:1"}, user={"token": "s3cret"})
    cfg2 = load_config(kc2)
    assert authorize(cfg2.auth(), httpx.Request("GET", "http://h:1/")).headers["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(cfg2) and "REDACTED" in repr(cfg2)


def test_token_file_rotation_is_reread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kfast._auth as auth_mod

    f = tmp_path / "tok"
    f.write_text("one")
    a = BearerAuth(token_file=str(f))
    assert a.token() == "one"
    f.write_text("two")
    assert a.token() == "one"  # cached within the refresh period
    monkeypatch.setattr(auth_mod, "TOKEN_FILE_REFRESH_SECONDS", 0.0)
    assert a.token() == "two"
    f.unlink()
    assert a.token() == "two"  # mid-rotation: keep the last good token


def test_token_file_reread_on_401(tmp_path: Path) -> None:
    f = tmp_path / "tok"
    f.write_text("old")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401 if request.headers["Authorization"] == "Bearer old" else 200)

    auth = BearerAuth(token_file=str(f))
    auth.token()
    f.write_text("new")
    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as c:
        assert c.get("http://h/").status_code == 200
    assert seen == ["Bearer old", "Bearer new"]


def test_client_key_redacted(tmp_path: Path, pki: Pki) -> None:
    cfg = Config(server="https://h", client_cert_pem=pki.client_cert_pem, client_key_pem=pki.client_key_pem)
    assert "PRIVATE" not in repr(cfg) and "client_key" in repr(cfg)


def test_explicit_context_and_default_namespace(tmp_path: Path) -> None:
    kc = write_kubeconfig(tmp_path / "config", cluster={"server": "http://h:1"}, user={},
                          extra_contexts=[{"name": "other", "context": {"cluster": "c1", "namespace": "ns2"}}])
    assert load_config(kc).namespace == "default"
    cfg = load_config(kc, context="other")
    assert cfg.context == "other" and cfg.namespace == "ns2"


def test_kubeconfig_env_merges_first_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write_kubeconfig(tmp_path / "a", cluster={"server": "http://first:1"}, user={"token": "t1"}, current=None)
    b = write_kubeconfig(tmp_path / "b", cluster={"server": "http://second:1"}, user={"token": "t2"}, current="ctx")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing"), str(a), str(b)]))
    cfg = load_config()
    assert cfg.server == "http://first:1" and cfg.token == "t1"


@pytest.mark.parametrize(("cluster", "user", "needle"), [
    ({}, {}, "server"),
    ({"server": "https://h", "certificate-authority-data": "!!notbase64"}, {}, "certificate-authority-data"),
    ({"server": "https://h", "certificate-authority": "nope.crt"}, {}, "certificate-authority"),
    ({"server": "https://h"}, {"client-key": "nope.key", "client-certificate-data": b64(b"x")}, "client-key"),
    ({"server": "https://h"}, {"tokenFile": "missing-token"}, "tokenFile"),
    ({"server": "https://h", "insecure-skip-tls-verify": True, "certificate-authority-data": b64(b"x")}, {},
     "insecure-skip-tls-verify"),
    ({"server": "https://h"}, {"exec": {"command": "x"}}, "exec"),
])
def test_broken_input_names_file_and_key(tmp_path: Path, cluster: dict, user: dict, needle: str) -> None:
    kc = write_kubeconfig(tmp_path / "config", cluster=cluster, user=user)
    with pytest.raises(errors.ConfigError) as ei:
        load_config(kc)
    assert needle in str(ei.value) and str(kc) in str(ei.value)


def test_invalid_pem_fails_when_context_is_built(tmp_path: Path) -> None:
    kc = write_kubeconfig(tmp_path / "config", cluster={"server": "https://h", "certificate-authority-data": b64(b"junk")}, user={})
    cfg = load_config(kc)
    with pytest.raises(errors.ConfigError, match="certificate-authority"):
        cfg.ssl_context


def test_bad_yaml_unknown_context_and_missing_current(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("clusters: [unclosed")
    with pytest.raises(errors.ConfigError, match="YAML"):
        load_config(bad)
    kc = write_kubeconfig(tmp_path / "config", cluster={"server": "http://h"}, user={}, current=None)
    with pytest.raises(errors.ConfigError, match="current-context"):
        load_config(kc)
    with pytest.raises(errors.ConfigError, match="'nope' not found"):
        load_config(kc, context="nope")


def test_nothing_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(errors.ConfigError, match="no kubeconfig"):
        load_config()


def sa_dir(tmp_path: Path, pki: Pki) -> Path:
    d = tmp_path / "sa"
    d.mkdir()
    (d / "token").write_text("sa-token")
    (d / "ca.crt").write_bytes(pki.ca_pem)
    (d / "namespace").write_text("kube-system\n")
    return d


@pytest.mark.parametrize(("host", "server"), [("10.0.0.1", "https://10.0.0.1:443"), ("fd00::1", "https://[fd00::1]:443")])
def test_in_cluster(tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch, host: str, server: str) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    cfg = load_incluster_config(sa_dir(tmp_path, pki))
    assert cfg.server == server and cfg.namespace == "kube-system" and cfg.ca_pem == pki.ca_pem
    assert authorize(cfg.auth(), httpx.Request("GET", server)).headers["Authorization"] == "Bearer sa-token"


def test_in_cluster_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(errors.ConfigError, match="KUBERNETES_SERVICE_HOST"):
        load_incluster_config(tmp_path)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(errors.ConfigError, match="token"):
        load_incluster_config(tmp_path)


def test_for_url_and_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config.for_url("http://127.0.0.1:8080/")
    assert cfg.server == "http://127.0.0.1:8080" and not cfg.is_https
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert cfg.proxy_for(cfg.server) == "http://proxy:3128"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert cfg.proxy_for(cfg.server) is None


def test_one_ssl_context_shared_by_httpx_and_the_wire(pki: Pki) -> None:
    from kfast._transport import SyncTransport
    from kfast._wire import Wire

    cfg = Config(server="https://127.0.0.1:1", ca_pem=pki.ca_pem)
    wire = Wire(cfg)
    transport = wire.client._transport
    assert isinstance(transport, SyncTransport)
    pool = getattr(transport.pool(), "_pool", None)
    assert transport.ssl_context is cfg.ssl_context
    if pool is not None and hasattr(pool, "_ssl_context"):
        assert pool._ssl_context is cfg.ssl_context
    ns2 = cfg.with_namespace("other")
    assert ns2.namespace == "other" and ns2.server == cfg.server
    assert ns2.ssl_context is cfg.ssl_context  # same user and cluster: same TLS state
    wire.close()


def _handshake(ctx: ssl.SSLContext, port: int) -> str:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return str(tls.version())


def test_https_proxy_trust_is_the_system_store_the_cluster_ca_and_proxy_ca(pki: Pki) -> None:
    from kfast._tls import ProxyTLSFailure, build_proxy_ssl_context

    from _proxy import ConnectProxy

    proxy = ConnectProxy(tls=(pki.server_cert_pem, pki.server_key_pem))
    try:
        # The proxy's certificate is signed by pki's CA. Trusted as the cluster's CA (what
        # client-go does, so kubeconfigs kubectl accepts keep working) ...
        as_cluster_ca = Config(server="https://10.0.0.1", ca_pem=pki.ca_pem, proxy_url=proxy.url)
        assert _handshake(as_cluster_ca.proxy_ssl_context, proxy.port).startswith("TLS")
        # ... or given as proxy_ca_pem, next to an unrelated cluster.
        explicit = Config(server="https://10.0.0.1", proxy_url=proxy.url, proxy_ca_pem=pki.ca_pem)
        assert _handshake(explicit.proxy_ssl_context, proxy.port).startswith("TLS")
        assert explicit.proxy_ssl_context is explicit.proxy_ssl_context  # built once
        # insecure-skip-tls-verify is about the API server: the proxy is still verified.
        insecure = Config(server="https://10.0.0.1", insecure_skip_tls_verify=True, proxy_url=proxy.url)
        assert insecure.ssl_context.verify_mode == ssl.CERT_NONE
        with pytest.raises(ProxyTLSFailure, match="certificate verify failed") as ei:
            _handshake(insecure.proxy_ssl_context, proxy.port)
        assert isinstance(ei.value.__cause__, ssl.SSLCertVerificationError)
        import time

        deadline = time.monotonic() + 5  # the proxy's thread notes the refusal a moment later
        while not proxy.tls_failures and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proxy.tls_handshakes == 2 and len(proxy.tls_failures) == 1
    finally:
        proxy.close()
    with pytest.raises(errors.ConfigError, match="proxy CA"):
        build_proxy_ssl_context(None, b"not pem", "kc")


def test_https_proxy_is_given_the_proxy_context(pki: Pki) -> None:
    from kfast._transport import AsyncTransport, SyncTransport

    cfg = Config(server="https://10.0.0.1", ca_pem=pki.ca_pem, proxy_url="https://u:p@proxy.test:3129")
    for t in (SyncTransport(cfg), AsyncTransport(cfg)):
        p = t._p.proxy
        assert p is not None and p.ssl_context is cfg.proxy_ssl_context and p.url.host == "proxy.test"
        assert p.ssl_context is not cfg.ssl_context  # the API server's context is another one
    plain = SyncTransport(Config(server="https://10.0.0.1", proxy_url="http://proxy.test:3128"))
    assert plain._p.proxy is not None and plain._p.proxy.ssl_context is None


def test_in_cluster_ca_bundle_rotation_is_picked_up_for_new_connections(
        tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    import kfast._tls
    from _pki import _make_pki
    from _proxy import ConnectProxy

    monkeypatch.setattr(kfast._tls, "CERT_FILE_CHECK_SECONDS", 0.0)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    new = _make_pki()  # the cluster's next CA
    old_server = ConnectProxy(tls=(pki.server_cert_pem, pki.server_key_pem))  # TLS servers for a handshake
    new_server = ConnectProxy(tls=(new.server_cert_pem, new.server_key_pem))
    try:
        d = sa_dir(tmp_path, pki)
        cfg = load_incluster_config(d)
        assert cfg.ca_file == str(d / "ca.crt")
        first = cfg.ssl_context
        assert cfg.ssl_context is first  # unchanged file: the same context
        _handshake(first, old_server.port)
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(first, new_server.port)
        # The kubelet swaps the projected file: a new bundle with both CAs, renamed into place.
        (d / ".ca.new").write_bytes(pki.ca_pem + new.ca_pem)
        (d / ".ca.new").rename(d / "ca.crt")
        second = cfg.ssl_context
        assert second is not first
        _handshake(second, new_server.port)
        _handshake(second, old_server.port)
        # A half-written bundle does not replace a working one.
        (d / "ca.crt").write_bytes(new.ca_pem[:40])
        assert cfg.ssl_context is second
        (d / "ca.crt").unlink()  # gone for a moment mid-rotation: keep the last good one
        assert cfg.ssl_context is second
    finally:
        old_server.close()
        new_server.close()


def test_kubeconfig_ca_file_is_kept_for_rotation_but_data_is_not(tmp_path: Path, pki: Pki) -> None:
    (tmp_path / "ca.pem").write_bytes(pki.ca_pem)
    cfg = load_config(write_kubeconfig(tmp_path / "a", cluster={"server": "https://h", "certificate-authority": "ca.pem"},
                                       user={"token": "t"}))
    assert cfg.ca_file == str(tmp_path / "ca.pem") and cfg.ca_pem == pki.ca_pem
    cfg2 = load_config(write_kubeconfig(tmp_path / "b", cluster={"server": "https://h",
                                                                 "certificate-authority-data": b64(pki.ca_pem)},
                                        user={"token": "t"}))
    assert cfg2.ca_file is None and cfg2.ca_pem == pki.ca_pem
