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
