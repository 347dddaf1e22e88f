"""One transport for REST and watches against the real kube-apiserver: the watch wire path
with credentials from an exec plugin, and both paths through an HTTP CONNECT proxy."""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfast import AsyncClient, Client, Config, load_config
from kfast._wire import Wire
from kfast.testing import ADMIN, Cluster

from _proxy import ConnectProxy, Socks5Proxy

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    p = ConnectProxy()
    yield p
    p.close()


def kubeconfig(cluster: Cluster, path: Path, user: dict[str, Any], **cluster_extra: Any) -> Path:
    ca = base64.b64encode(cluster.ca_file.read_bytes()).decode()
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
           "clusters": [{"name": "k", "cluster": {"server": cluster.url, "certificate-authority-data": ca,
                                                  **cluster_extra}}],
           "users": [{"name": "u", "user": user}],
           "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}
    path.write_text(yaml.safe_dump(doc))
    return path


def list_and_watch(cfg: Config, namespace: str) -> list[str]:
    """LIST, create a ConfigMap, then watch from the list's RV until the ADDED event."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    wire = Wire(cfg)
    try:
        listed = wire.list_page(path, {})
        with Client(cfg) as c:
            c.post(path, {"metadata": {"name": "seen-by-watch"}})
        stream = wire.watch(path, {"watch": "1", "resourceVersion": listed.resource_version, "timeoutSeconds": "5"})
        types = []
        for ev in stream.events():
            types.append(ev.type)
            if ev.type == "ADDED":
                stream.close()
                break
        return types
    finally:
        wire.close()


def test_watch_wire_path_uses_exec_client_certificate(cluster: Cluster, tmp_path: Path, namespace: str) -> None:
    admin = cluster.users[ADMIN]
    plugin = tmp_path / "cert-plugin"
    plugin.write_text(f"""#!{sys.executable}
import json, os, pathlib
runs = pathlib.Path({str(tmp_path / "runs")!r})
runs.write_text(str(int(runs.read_text()) + 1) if runs.exists() else "1")
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": {{
    "clientCertificateData": open({str(admin.cert_file)!r}).read(),
    "clientKeyData": open({str(admin.key_file)!r}).read()}}}}))
""")
    plugin.chmod(0o755)
    cfg = load_config(kubeconfig(cluster, tmp_path / "config", {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin), "interactiveMode": "Never"}}))
    wire = Wire(cfg)
    assert wire.direct  # the watch reads its own socket, TLS from the config's context
    wire.close()
    assert list_and_watch(cfg, namespace) == ["ADDED"]
    # REST, LIST and the watch share one credential: the plugin ran once
    assert (tmp_path / "runs").read_text() == "1"


def test_rest_and_watch_through_a_connect_proxy(cluster: Cluster, tmp_path: Path, proxy: ConnectProxy,
                                                namespace: str) -> None:
    admin = cluster.users[ADMIN]
    assert admin.cert_file is not None and admin.key_file is not None
    user = {"client-certificate": str(admin.cert_file), "client-key": str(admin.key_file)}
    cfg = load_config(kubeconfig(cluster, tmp_path / "config", user, **{"proxy-url": proxy.url}))
    with Client(cfg) as c:
        assert c.version()["gitVersion"].startswith("v1.37")

    async def via_async() -> dict[str, Any]:
        async with AsyncClient(cfg) as c:
            v: dict[str, Any] = await c.version()
            return v

    assert asyncio.run(via_async())["major"] == "1"
    target = f"127.0.0.1:{cluster.port}"
    assert proxy.tunnels.count(target) >= 2
    before = len(proxy.tunnels)
    wire = Wire(cfg)
    assert not wire.direct  # through a proxy the watch streams through httpx
    wire.close()
    assert list_and_watch(cfg, namespace) == ["ADDED"]
    assert len(proxy.tunnels) > before
    # An informer's streaming list through the proxy: kube-apiserver gzips that response
    # unless asked not to, which the httpx watch path once passed to the decoder raw.
    from kfast import SharedIndexInformer

    with SharedIndexInformer(cfg, "configmaps", namespace=namespace) as inf:
        assert inf.wait_for_sync(30) and inf.metrics().decode_errors == 0
        assert [o.name for o in inf.lister.list(namespace)] == ["seen-by-watch"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_tls_server_name(cluster: Cluster, tmp_path: Path, mode: str) -> None:
    import kfast.errors as errors

    admin = cluster.users[ADMIN]
    user = {"client-certificate": str(admin.cert_file), "client-key": str(admin.key_file)}

    def version(name: str) -> Any:
        cfg = load_config(kubeconfig(cluster, tmp_path / f"config-{name}", user, **{"tls-server-name": name}))
        if mode == "sync":
            with Client(cfg) as c:
                return c.version()

        async def main() -> Any:
            async with AsyncClient(cfg) as c:
                return await c.version()

        return asyncio.run(main())

    assert version("localhost")["major"] == "1"  # a SAN of the serving certificate
    with pytest.raises(errors.TLSError) as ei:
        version("not-in-the-certificate.test")
    assert ei.value.__cause__ is not None and "certificate" in str(ei.value).lower()


def test_tls_server_name_on_the_watch_path(cluster: Cluster, tmp_path: Path, namespace: str) -> None:
    admin = cluster.users[ADMIN]
    user = {"client-certificate": str(admin.cert_file), "client-key": str(admin.key_file)}
    cfg = load_config(kubeconfig(cluster, tmp_path / "config", user, **{"tls-server-name": "localhost"}))
    assert list_and_watch(cfg, namespace) == ["ADDED"]


def test_watch_401_makes_the_next_watch_reread_the_token_file(cluster: Cluster, tmp_path: Path,
                                                             namespace: str) -> None:
    import csv

    import kfast.errors as errors
    from kfast.testing import TOKEN_ADMIN

    with open(cluster.pki.token_file, newline="") as f:
        good = next(r[0] for r in csv.reader(f) if r[1] == TOKEN_ADMIN)
    tok = tmp_path / "token"
    tok.write_text("revoked")
    cfg = load_config(kubeconfig(cluster, tmp_path / "config", {"tokenFile": str(tok)}))
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    wire = Wire(cfg)
    try:
        with pytest.raises(errors.Unauthorized):
            list(wire.watch(path, {"watch": "1", "timeoutSeconds": "1"}).events())
        tok.write_text(good)  # rotated well within the minute the token is cached for
        assert list(wire.watch(path, {"watch": "1", "timeoutSeconds": "1"}).events()) == []
    finally:
        wire.close()


def test_rest_and_watch_through_socks5(cluster: Cluster, tmp_path: Path, namespace: str) -> None:
    socks = Socks5Proxy()
    try:
        admin = cluster.users[ADMIN]
        user = {"client-certificate": str(admin.cert_file), "client-key": str(admin.key_file)}
        cfg = load_config(kubeconfig(cluster, tmp_path / "config", user, **{"proxy-url": socks.url}))
        with Client(cfg) as c:
            assert c.version()["major"] == "1"

        async def via_async() -> dict[str, Any]:
            async with AsyncClient(cfg) as c:
                v: dict[str, Any] = await c.version()
                return v

        assert asyncio.run(via_async())["major"] == "1"
        assert list_and_watch(cfg, namespace) == ["ADDED"]
        assert socks.tunnels.count(f"127.0.0.1:{cluster.port}") >= 3
    finally:
        socks.close()


# -- an https:// proxy: TLS to the proxy, CONNECT, TLS to the API server inside the tunnel ----


@pytest.fixture
def https_proxy(pki: Any) -> Iterator[ConnectProxy]:
    # The proxy's certificate comes from tests/_pki's CA: neither the system store nor the
    # cluster's CA trusts it, so only proxy_ca_pem (or SSL_CERT_FILE) can.
    p = ConnectProxy(tls=(pki.server_cert_pem, pki.server_key_pem), auth=("kfast-proxy-user", "pr0xy-s3cret"))
    yield p
    p.close()


def _admin_user(cluster: Cluster) -> dict[str, str]:
    admin = cluster.users[ADMIN]
    return {"client-certificate": str(admin.cert_file), "client-key": str(admin.key_file)}


def _both_clients(cfg: Config) -> tuple[Any, Any]:
    with Client(cfg) as c:
        sync = c.version()

    async def via_async() -> Any:
        async with AsyncClient(cfg) as c:
            return await c.version()

    return sync, asyncio.run(via_async())


def test_rest_and_watch_through_an_https_proxy(cluster: Cluster, tmp_path: Path, https_proxy: ConnectProxy,
                                               namespace: str, pki: Any) -> None:
    from kfast import SharedIndexInformer

    cfg = load_config(kubeconfig(cluster, tmp_path / "config", _admin_user(cluster),
                                 **{"proxy-url": https_proxy.url})).replace(proxy_ca_pem=pki.ca_pem)
    sync, async_ = _both_clients(cfg)
    assert sync["gitVersion"].startswith("v1.37") and async_["gitVersion"] == sync["gitVersion"]
    wire = Wire(cfg)
    assert not wire.direct  # through a proxy the watch streams through httpx
    wire.close()
    assert list_and_watch(cfg, namespace) == ["ADDED"]
    # An informer (LIST/streaming list + WATCH into the FIFO) through the same tunnel.
    with SharedIndexInformer(cfg, "configmaps", namespace=namespace) as inf:
        assert inf.wait_for_sync(30)
        assert inf.lister.get("seen-by-watch", namespace) is not None
    # The REST layer's watch (AsyncResourceClient over AsyncClient.open_stream).
    assert _resource_watch_sees_a_create(cfg, namespace, "via-rest-async", asynchronous=True) == "ADDED"
    target = f"127.0.0.1:{cluster.port}"
    assert https_proxy.tunnels.count(target) >= 5 and set(https_proxy.tunnels) == {target}
    assert https_proxy.tls_handshakes >= 5 and https_proxy.tls_failures == []


@pytest.mark.xfail(strict=False, reason="KNOWN BUG, open: the sync REST watch through an https proxy "
                   "fails in about a third of runs with SSL DECRYPTION_FAILED_OR_BAD_RECORD_MAC "
                   "(TLS inside TLS; cause not found yet); the async client "
                   "and the informer's watch path pass")
def test_sync_rest_watch_through_an_https_proxy(cluster: Cluster, tmp_path: Path, https_proxy: ConnectProxy,
                                                namespace: str, pki: Any) -> None:
    cfg = load_config(kubeconfig(cluster, tmp_path / "config", _admin_user(cluster),
                                 **{"proxy-url": https_proxy.url})).replace(proxy_ca_pem=pki.ca_pem)
    for i in range(3):
        assert _resource_watch_sees_a_create(cfg, namespace, f"via-rest-sync-{i}", asynchronous=False) == "ADDED"


def _resource_watch_sees_a_create(cfg: Config, namespace: str, name: str, *, asynchronous: bool) -> str:
    """Start a ResourceClient watch from the list's RV, create a ConfigMap, return the type of
    the first event that names it."""
    if not asynchronous:
        with Client(cfg) as c:
            cms = c.resource("configmaps")
            rv = cms.list(namespace=namespace)["metadata"]["resourceVersion"]
            with cms.watch(namespace=namespace, resource_version=rv, timeout_seconds=20) as w:
                cms.create({"metadata": {"name": name}}, namespace=namespace)
                for ev in w:
                    if ev.object["metadata"].get("name") == name:
                        return ev.type
        return "none"

    async def go() -> str:
        async with AsyncClient(cfg) as c:
            cms = await c.resource("configmaps")
            rv = (await cms.list(namespace=namespace))["metadata"]["resourceVersion"]
            w = cms.watch(namespace=namespace, resource_version=rv, timeout_seconds=20)
            try:
                await cms.create({"metadata": {"name": name}}, namespace=namespace)
                async for ev in w:
                    if ev.object["metadata"].get("name") == name:
                        return ev.type
            finally:
                await w.close()
        return "none"

    return asyncio.run(go())


@pytest.mark.parametrize("mode", ["sync", "async", "watch"])
def test_untrusted_https_proxy_is_a_proxy_error(cluster: Cluster, tmp_path: Path, https_proxy: ConnectProxy,
                                                mode: str) -> None:
    import kfast.errors as errors
    from kfast import RetryPolicy

    cfg = load_config(kubeconfig(cluster, tmp_path / "config", _admin_user(cluster),
                                 **{"proxy-url": https_proxy.url}))
    with pytest.raises(errors.ProxyError) as ei:
        if mode == "sync":
            with Client(cfg, retry=RetryPolicy(max_attempts=1)) as c:
                c.version()
        elif mode == "async":
            async def main() -> None:
                async with AsyncClient(cfg, retry=RetryPolicy(max_attempts=1)) as c:
                    await c.version()
            asyncio.run(main())
        else:
            wire = Wire(cfg)
            try:
                list(wire.watch("/api/v1/namespaces/default/configmaps", {"watch": "1", "timeoutSeconds": "1"}).events())
            finally:
                wire.close()
    e = ei.value
    port = https_proxy.port
    assert f"TLS handshake with the proxy https://127.0.0.1:{port} failed" in str(e), str(e)
    assert "certificate" in str(e).lower() and e.__cause__ is not None
    assert "pr0xy-s3cret" not in str(e) and "kfast-proxy-user" not in str(e)
    assert https_proxy.tunnels == []  # nothing went through


def test_https_proxy_trusted_through_ssl_cert_file(cluster: Cluster, tmp_path: Path, https_proxy: ConnectProxy,
                                                   pki: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.ca_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # the "system" store, as Go and OpenSSL read it
    cfg = load_config(kubeconfig(cluster, tmp_path / "config", _admin_user(cluster),
                                 **{"proxy-url": https_proxy.url}))
    sync, async_ = _both_clients(cfg)
    assert sync["major"] == async_["major"] == "1"
    assert len(https_proxy.tunnels) == 2


@pytest.mark.parametrize("mode", ["sync", "async", "watch"])
def test_wrong_proxy_password_is_a_proxy_error_without_the_password(
        cluster: Cluster, tmp_path: Path, https_proxy: ConnectProxy, pki: Any, mode: str) -> None:
    import kfast.errors as errors
    from kfast import RetryPolicy

    bad = https_proxy.url.replace("pr0xy-s3cret", "wr0ng-s3cret")
    cfg = load_config(kubeconfig(cluster, tmp_path / "config", _admin_user(cluster),
                                 **{"proxy-url": bad})).replace(proxy_ca_pem=pki.ca_pem)
    with pytest.raises(errors.ProxyError) as ei:
        if mode == "sync":
            with Client(cfg, retry=RetryPolicy(max_attempts=1)) as c:
                c.version()
        elif mode == "async":
            async def main() -> None:
                async with AsyncClient(cfg, retry=RetryPolicy(max_attempts=1)) as c:
                    await c.version()
            asyncio.run(main())
        else:
            wire = Wire(cfg)
            try:
                list(wire.watch("/api/v1/namespaces/default/configmaps", {"watch": "1", "timeoutSeconds": "1"}).events())
            finally:
                wire.close()
    assert "407" in str(ei.value) and "wr0ng-s3cret" not in str(ei.value)
    assert https_proxy.tls_handshakes >= 1 and https_proxy.tunnels == []


def test_api_server_certificate_is_still_checked_inside_an_https_proxy_tunnel(
        cluster: Cluster, tmp_path: Path, https_proxy: ConnectProxy, pki: Any) -> None:
    import kfast.errors as errors
    from kfast import RetryPolicy

    # The cluster's CA replaced by the proxy's: the proxy is trusted, the API server is not.
    doc = yaml.safe_load(kubeconfig(cluster, tmp_path / "config", _admin_user(cluster),
                                    **{"proxy-url": https_proxy.url}).read_text())
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(pki.ca_pem).decode()
    (tmp_path / "config").write_text(yaml.safe_dump(doc))
    cfg = load_config(tmp_path / "config")
    with pytest.raises(errors.TLSError) as ei, Client(cfg, retry=RetryPolicy(max_attempts=1)) as c:
        c.version()
    assert not isinstance(ei.value, errors.ProxyError)  # the tunnel was fine; the server was not
    assert https_proxy.tunnels == [f"127.0.0.1:{cluster.port}"]


@pytest.mark.parametrize("mode", ["sync", "async", "watch"])
@pytest.mark.parametrize("scheme", ["http", "https", "socks5"])
def test_refusing_proxy_is_a_proxy_error(cluster: Cluster, tmp_path: Path, mode: str, scheme: str) -> None:
    import socket

    import kfast.errors as errors
    from kfast import RetryPolicy

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = load_config(kubeconfig(cluster, tmp_path / "config", _admin_user(cluster),
                                 **{"proxy-url": f"{scheme}://u:hunter2@127.0.0.1:{port}"}))
    with pytest.raises(errors.ProxyError) as ei:
        if mode == "sync":
            with Client(cfg, retry=RetryPolicy(max_attempts=1)) as c:
                c.version()
        elif mode == "async":
            async def main() -> None:
                async with AsyncClient(cfg, retry=RetryPolicy(max_attempts=1)) as c:
                    await c.version()
            asyncio.run(main())
        else:
            wire = Wire(cfg)
            try:
                list(wire.watch("/api/v1/namespaces/default/configmaps", {"watch": "1", "timeoutSeconds": "1"}).events())
            finally:
                wire.close()
    msg = str(ei.value)
    assert f"cannot connect to the proxy {scheme}://127.0.0.1:{port}" in msg and "hunter2" not in msg
    assert isinstance(ei.value.__cause__, Exception)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_in_cluster_ca_rotation_reaches_new_connections(cluster: Cluster, tmp_path: Path, pki: Any, mode: str,
                                                        monkeypatch: pytest.MonkeyPatch, namespace: str) -> None:
    """A pod whose mounted ca.crt is rotated: the same Client (and the watch path) trust the
    new bundle for their next connections, without a restart."""
    import csv

    import kfast._tls
    import kfast.errors as errors
    from kfast import RetryPolicy, load_incluster_config
    from kfast.testing import TOKEN_ADMIN

    monkeypatch.setattr(kfast._tls, "CERT_FILE_CHECK_SECONDS", 0.0)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(cluster.port))
    sa = tmp_path / "sa"
    sa.mkdir()
    with open(cluster.pki.token_file, newline="") as f:
        (sa / "token").write_text(next(r[0] for r in csv.reader(f) if r[1] == TOKEN_ADMIN))
    (sa / "ca.crt").write_bytes(pki.ca_pem)  # not the cluster's CA (yet)
    (sa / "namespace").write_text(namespace)
    cfg = load_incluster_config(sa)

    def rotate() -> None:
        (sa / ".ca.new").write_bytes(pki.ca_pem + cluster.ca_file.read_bytes())
        (sa / ".ca.new").rename(sa / "ca.crt")

    if mode == "sync":
        with Client(cfg, retry=RetryPolicy(max_attempts=1)) as c:
            with pytest.raises(errors.TLSError):
                c.version()
            rotate()
            assert c.version()["major"] == "1"
    else:
        async def main() -> None:
            async with AsyncClient(cfg, retry=RetryPolicy(max_attempts=1)) as c:
                with pytest.raises(errors.TLSError):
                    await c.version()
                rotate()
                assert (await c.version())["major"] == "1"

        asyncio.run(main())
    assert list_and_watch(cfg, namespace) == ["ADDED"]  # the watch socket path too


@pytest.mark.parametrize("mode", ["sync", "async", "watch"])
def test_tls_server_name_is_checked_inside_a_proxy_tunnel(cluster: Cluster, tmp_path: Path, proxy: ConnectProxy,
                                                         mode: str, namespace: str) -> None:
    """httpx opens TLS inside a CONNECT tunnel with the URL's host (127.0.0.1, also a SAN of
    the serving certificate); tls-server-name must still be the name checked."""
    import kfast.errors as errors
    from kfast import RetryPolicy

    def attempt(name: str) -> Any:
        cfg = load_config(kubeconfig(cluster, tmp_path / f"config-{name}", _admin_user(cluster),
                                     **{"tls-server-name": name, "proxy-url": proxy.url}))
        if mode == "sync":
            with Client(cfg, retry=RetryPolicy(max_attempts=1)) as c:
                return c.version()["major"]
        if mode == "async":
            async def main() -> Any:
                async with AsyncClient(cfg, retry=RetryPolicy(max_attempts=1)) as c:
                    return (await c.version())["major"]
            return asyncio.run(main())
        return list_and_watch(cfg, namespace)

    assert attempt("localhost") == (["ADDED"] if mode == "watch" else "1")
    with pytest.raises(errors.TLSError) as ei:
        attempt("not-in-the-certificate.test")
    assert not isinstance(ei.value, errors.ProxyError) and "not-in-the-certificate.test" in str(ei.value)
