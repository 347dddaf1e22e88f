"""kfast.Client and kfast.AsyncClient against the real kube-apiserver: every way of logging
in that the test cluster offers, typed Forbidden, and APF's 429 with Retry-After."""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfast import AsyncClient, Client, Config, RetryPolicy, errors, load_config
from kfast.testing import ADMIN, TOKEN_ADMIN, TOKEN_USER, USER, Cluster

pytestmark = pytest.mark.integration
modes = pytest.mark.parametrize("mode", ["sync", "async"])

REVIEW = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
BODY = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def run(mode: str, cfg: Config, calls: Callable[[Any], Any], **kw: Any) -> Any:
    """``calls(client)`` returns a value (sync) or a coroutine (async): one body, two drivers."""
    if mode == "sync":
        with Client(cfg, **kw) as c:
            return calls(c)

    async def main() -> Any:
        async with AsyncClient(cfg, **kw) as c:
            return await calls(c)

    return asyncio.run(main())


def whoami(mode: str, cfg: Config) -> str:
    review = run(mode, cfg, lambda c: c.post(REVIEW, BODY))
    return str(review["status"]["userInfo"]["username"])


def static_token(cluster: Cluster, user: str) -> str:
    with open(cluster.pki.token_file, newline="") as f:
        for row in csv.reader(f):
            if row[1] == user:
                return row[0]
    raise LookupError(user)


def kubeconfig(cluster: Cluster, path: Path, user: dict[str, Any]) -> Path:
    ca = base64.b64encode(cluster.ca_file.read_bytes()).decode()
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
           "clusters": [{"name": "k", "cluster": {"server": cluster.url, "certificate-authority-data": ca}}],
           "users": [{"name": "u", "user": user}],
           "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "default"}}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


@modes
@pytest.mark.parametrize("user", [ADMIN, USER])
def test_client_certificate(cluster: Cluster, mode: str, user: str) -> None:
    cfg = load_config(cluster.kubeconfig, cluster.context(user))
    assert cfg.client_cert_pem and whoami(mode, cfg) == user
    version = run(mode, cfg, lambda c: c.version())
    assert version["gitVersion"].startswith("v1.37")


@modes
def test_bearer_token(cluster: Cluster, mode: str) -> None:
    cfg = load_config(cluster.kubeconfig, cluster.context(TOKEN_USER))
    assert cfg.token and not cfg.client_cert_pem and whoami(mode, cfg) == TOKEN_USER


@modes
def test_exec_plugin_token(cluster: Cluster, tmp_path: Path, mode: str) -> None:
    # The plugin reads the token from the apiserver's own --token-auth-file at run time.
    plugin = tmp_path / "bin" / "kfast-cred"
    plugin.parent.mkdir()
    plugin.write_text(f"""#!{sys.executable}
import csv, json, os
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["spec"]["cluster"]["server"] == {cluster.url!r}
token = next(r[0] for r in csv.reader(open({str(cluster.pki.token_file)!r})) if r[1] == {TOKEN_USER!r})
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": {{"token": token}}}}))
""")
    plugin.chmod(0o755)
    kc = kubeconfig(cluster, tmp_path / "config", {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": "bin/kfast-cred",
        "interactiveMode": "Never", "provideClusterInfo": True}})
    assert whoami(mode, load_config(kc)) == TOKEN_USER


@modes
def test_exec_plugin_client_certificate(cluster: Cluster, tmp_path: Path, mode: str) -> None:
    u = cluster.users[USER]
    assert u.cert_file is not None and u.key_file is not None
    plugin = tmp_path / "cert-plugin"
    plugin.write_text(f"""#!{sys.executable}
import json, os
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": {{
    "clientCertificateData": open({str(u.cert_file)!r}).read(),
    "clientKeyData": open({str(u.key_file)!r}).read()}}}}))
""")
    plugin.chmod(0o755)
    kc = kubeconfig(cluster, tmp_path / "config", {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin)}})
    assert whoami(mode, load_config(kc)) == USER


def _two_calls(mode: str, cfg: Config, between: Callable[[], None]) -> tuple[str, str]:
    def both_sync(c: Client) -> tuple[str, str]:
        first = c.post(REVIEW, BODY)["status"]["userInfo"]["username"]
        between()
        return first, c.post(REVIEW, BODY)["status"]["userInfo"]["username"]

    async def both_async(c: AsyncClient) -> tuple[str, str]:
        first = (await c.post(REVIEW, BODY))["status"]["userInfo"]["username"]
        between()
        return first, (await c.post(REVIEW, BODY))["status"]["userInfo"]["username"]

    result: tuple[str, str] = run(mode, cfg, both_sync if mode == "sync" else both_async)
    return result


@modes
def test_token_file_rotation_between_two_calls(cluster: Cluster, tmp_path: Path, mode: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import kfast._auth

    monkeypatch.setattr(kfast._auth, "TOKEN_FILE_REFRESH_SECONDS", 0.0)  # the periodic re-read, now
    tok = tmp_path / "token"
    tok.write_text(static_token(cluster, TOKEN_USER))
    cfg = load_config(kubeconfig(cluster, tmp_path / "config", {"tokenFile": "token"}))
    swap = lambda: tok.write_text(static_token(cluster, TOKEN_ADMIN))  # noqa: E731
    assert _two_calls(mode, cfg, swap) == (TOKEN_USER, TOKEN_ADMIN)


@modes
def test_token_file_reread_on_401(cluster: Cluster, tmp_path: Path, mode: str) -> None:
    # Default re-read period (a minute): the refused token makes the client read the file
    # again at once and send the request again.
    tok = tmp_path / "token"
    tok.write_text("expired-token")
    cfg = load_config(kubeconfig(cluster, tmp_path / "config", {"tokenFile": "token"}))
    with pytest.raises(errors.Unauthorized):
        run(mode, cfg, lambda c: c.get("/api"))
    tok.write_text(static_token(cluster, TOKEN_USER) + "\n")
    assert whoami(mode, cfg) == TOKEN_USER


@modes
def test_unknown_token_is_unauthorized(cluster: Cluster, tmp_path: Path, mode: str) -> None:
    cfg = load_config(kubeconfig(cluster, tmp_path / "config", {"token": "not-a-real-token"}))
    with pytest.raises(errors.Unauthorized) as ei:
        run(mode, cfg, lambda c: c.get("/api/v1/namespaces"))
    assert ei.value.code == 401 and "not-a-real-token" not in str(ei.value)


@modes
@pytest.mark.parametrize("user", [USER, TOKEN_USER])
def test_user_without_rights_gets_forbidden(cluster: Cluster, mode: str, user: str) -> None:
    cfg = load_config(cluster.kubeconfig, cluster.context(user))
    with pytest.raises(errors.Forbidden) as ei:
        run(mode, cfg, lambda c: c.get("/api/v1/namespaces/default/secrets"))
    e = ei.value
    assert e.code == 403 and e.reason == "Forbidden" and e.details.get("kind") == "secrets"
    assert user in e.message and e.attempts == 1  # never retried


@modes
def test_not_found_and_already_exists(cluster: Cluster, mode: str, namespace: str) -> None:
    cfg = load_config(cluster.kubeconfig, cluster.context(ADMIN))
    cm = {"metadata": {"name": "x"}, "data": {"a": "1"}}
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    run(mode, cfg, lambda c: c.post(path, cm))
    with pytest.raises(errors.AlreadyExists):
        run(mode, cfg, lambda c: c.post(path, cm))
    with pytest.raises(errors.NotFound) as ei:
        run(mode, cfg, lambda c: c.get(f"{path}/missing"))
    assert ei.value.details == {"name": "missing", "kind": "configmaps"}
    with pytest.raises(errors.Invalid) as ei2:
        run(mode, cfg, lambda c: c.post(path, {"metadata": {"name": "Bad_Name"}}))
    assert ei2.value.causes and ei2.value.causes[0]["field"] == "metadata.name"


def test_apf_429_retry_after_honoured_and_reported(cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    cfg = load_config(cluster.kubeconfig, cluster.context(USER))
    caplog.set_level(logging.INFO, "kfast.client")
    with cluster.apf_jail(USER):
        for mode in ("sync", "async"):
            caplog.clear()
            start = time.monotonic()
            with pytest.raises(errors.TooManyRequests) as ei:
                run(mode, cfg, lambda c: c.get("/api/v1/namespaces/default/configmaps"),
                    retry=RetryPolicy(max_attempts=3))
            elapsed = time.monotonic() - start
            e = ei.value
            assert e.code == 429 and e.retry_after is not None and e.retry_after >= 1
            assert e.attempts == 3
            # two waits of Retry-After each between the three attempts
            assert elapsed >= 2 * e.retry_after - 0.1, (mode, elapsed, e.retry_after)
            retries = [r.getMessage() for r in caplog.records if "retrying GET" in r.getMessage()]
            assert len(retries) == 2 and "429" in retries[0], retries
            print(json.dumps({"mode": mode, "retry_after": e.retry_after, "elapsed": round(elapsed, 2)}))


@modes
def test_client_certificate_files_rotating_on_disk(cluster: Cluster, tmp_path: Path, mode: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import kfast._tls

    monkeypatch.setattr(kfast._tls, "CERT_FILE_CHECK_SECONDS", 0.0)
    first, second = cluster.users[USER], cluster.users[ADMIN]
    assert first.cert_file and first.key_file and second.cert_file and second.key_file
    shutil.copy(first.cert_file, tmp_path / "tls.crt")
    shutil.copy(first.key_file, tmp_path / "tls.key")
    cfg = load_config(kubeconfig(cluster, tmp_path / "config", {"client-certificate": "tls.crt",
                                                                "client-key": "tls.key"}))

    def rotate() -> None:
        # as a cert-manager sidecar would: new files renamed into place
        for src, name in ((second.cert_file, "tls.crt"), (second.key_file, "tls.key")):
            shutil.copy(src, tmp_path / f".{name}.new")  # type: ignore[arg-type]
            (tmp_path / f".{name}.new").rename(tmp_path / name)

    assert _two_calls(mode, cfg, rotate) == (USER, ADMIN)


@modes
def test_exec_plugin_runs_again_after_a_401(cluster: Cluster, tmp_path: Path, mode: str) -> None:
    # First run: a token the server refuses; the 401 makes the client run the plugin again
    # (off the event loop for AsyncClient) and send the request once more.
    plugin = tmp_path / "cred"
    runs = tmp_path / "runs"
    plugin.write_text(f"""#!{sys.executable}
import csv, json, os, pathlib
runs = pathlib.Path({str(runs)!r})
n = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(n))
token = "revoked" if n == 1 else next(r[0] for r in csv.reader(open({str(cluster.pki.token_file)!r})) if r[1] == {TOKEN_USER!r})
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": {{"token": token}}}}))
""")
    plugin.chmod(0o755)
    kc = kubeconfig(cluster, tmp_path / "config", {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin), "interactiveMode": "Never"}})
    assert whoami(mode, load_config(kc)) == TOKEN_USER
    assert runs.read_text() == "2"


@modes
def test_exec_plugin_timeout_is_an_auth_error(cluster: Cluster, tmp_path: Path, mode: str) -> None:
    import dataclasses

    plugin = tmp_path / "slow"
    plugin.write_text("#!/bin/sh\nsleep 600\n")
    plugin.chmod(0o755)
    cfg = load_config(kubeconfig(cluster, tmp_path / "config", {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin), "interactiveMode": "Never"}}))
    assert cfg.exec_config is not None
    cfg = cfg.replace(exec_config=dataclasses.replace(cfg.exec_config, timeout=0.5))
    start = time.monotonic()
    with pytest.raises(errors.AuthError, match="did not finish within 0.5 s and was killed"):
        run(mode, cfg, lambda c: c.get("/api"), retry=RetryPolicy(max_attempts=1))
    assert time.monotonic() - start < 5
