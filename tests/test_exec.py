"""Exec credential plugins: real scripts on disk, run the way kubectl runs them."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kfast import Config, errors, load_config
from kfast._auth import ExecAuth, authorize

from _pki import Pki

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"

# Records what it was given, counts its runs, prints the status in $STATUS_FILE.
GOOD = """#!{python}
import json, os, sys, pathlib
here = pathlib.Path(__file__).parent
runs = here / "runs"
runs.write_text(str(int(runs.read_text()) + 1) if runs.exists() else "1")
(here / "seen.json").write_text(json.dumps({{
    "args": sys.argv[1:], "info": json.loads(os.environ["KUBERNETES_EXEC_INFO"]),
    "env": os.environ.get("PLUGIN_ENV"), "stdin_tty": sys.stdin.isatty() if sys.stdin else None,
}}))
status = json.loads((here / "status.json").read_text())
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
print(json.dumps({{"apiVersion": os.environ.get("API_VERSION") or info["apiVersion"], "kind": "ExecCredential",
                  "status": status}}))
"""
FAILING = """#!{python}
import sys
sys.stderr.write("error: you must log in first (try: login --sso)\\n")
sys.exit(3)
"""
GARBAGE = """#!{python}
import sys
print("Welcome! token=abc123-not-json")
sys.stderr.write("warning: deprecated flag\\n")
"""


def script(d: Path, name: str, body: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text(body.format(python=sys.executable, v1=V1))
    p.chmod(0o755)
    return p


def kubeconfig(d: Path, exec_spec: dict[str, Any], cluster: dict[str, Any] | None = None) -> Path:
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": cluster or {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"exec": exec_spec}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }
    p = d / "config"
    p.write_text(yaml.safe_dump(doc))
    return p


def status(d: Path, **st: Any) -> None:
    (d / "status.json").write_text(json.dumps(st))


def header(cfg: Config) -> str | None:
    return authorize(cfg.auth(), httpx.Request("GET", cfg.server + "/api")).headers.get("Authorization")


def test_relative_command_env_args_and_cluster_info(tmp_path: Path, pki: Pki) -> None:
    bin_dir = tmp_path / "kube" / "bin"
    script(bin_dir, "plugin", GOOD)
    status(bin_dir, token="tok-1")
    kc = kubeconfig(tmp_path / "kube", {
        "apiVersion": V1, "command": "bin/plugin", "args": ["--flag", "x"], "interactiveMode": "Never",
        "env": [{"name": "PLUGIN_ENV", "value": "from-kubeconfig"}], "provideClusterInfo": True,
    }, cluster={"server": "https://127.0.0.1:6443", "certificate-authority-data": base64.b64encode(pki.ca_pem).decode(),
                "tls-server-name": "kfast.test",
                "extensions": [{"name": "client.authentication.k8s.io/exec", "extension": {"audience": "a"}}]})
    cfg = load_config(kc)
    assert cfg.exec_config is not None and cfg.exec_config.command == str(bin_dir / "plugin")
    assert header(cfg) == "Bearer tok-1"
    seen = json.loads((bin_dir / "seen.json").read_text())
    assert seen["args"] == ["--flag", "x"] and seen["env"] == "from-kubeconfig"
    assert seen["stdin_tty"] is False  # interactiveMode Never: no terminal handed over
    info = seen["info"]
    assert info["apiVersion"] == V1 and info["kind"] == "ExecCredential"
    assert info["spec"]["interactive"] is False
    cluster = info["spec"]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443" and cluster["tls-server-name"] == "kfast.test"
    assert base64.b64decode(cluster["certificate-authority-data"]) == pki.ca_pem
    assert cluster["config"] == {"audience": "a"}
    assert "tok-1" not in repr(cfg) and "tok-1" not in repr(cfg.auth())


def test_cached_until_expiry_and_rerun_on_401(tmp_path: Path) -> None:
    d = tmp_path / "p"
    script(d, "plugin", GOOD)
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status(d, token="old", expirationTimestamp=later)
    cfg = load_config(kubeconfig(d, {"apiVersion": V1BETA1, "command": str(d / "plugin")},))
    assert header(cfg) == "Bearer old" and header(cfg) == "Bearer old"
    assert (d / "runs").read_text() == "1"  # cached: not run again before it expires
    status(d, token="new")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401 if request.headers["Authorization"] == "Bearer old" else 200)

    with httpx.Client(transport=httpx.MockTransport(handler), auth=cfg.auth()) as c:
        assert c.get("http://h/").status_code == 200
    assert seen == ["Bearer old", "Bearer new"] and (d / "runs").read_text() == "2"


def test_expired_credential_runs_again(tmp_path: Path) -> None:
    d = tmp_path / "p"
    script(d, "plugin", GOOD)
    status(d, token="t", expirationTimestamp="2000-01-01T00:00:00Z")
    cfg = load_config(kubeconfig(d, {"apiVersion": V1, "command": str(d / "plugin"), "interactiveMode": "IfAvailable"}))
    header(cfg)
    header(cfg)
    assert (d / "runs").read_text() == "2"


def test_async_flow_runs_plugin_off_the_loop(tmp_path: Path) -> None:
    d = tmp_path / "p"
    script(d, "plugin", GOOD)
    status(d, token="async-tok")
    cfg = load_config(kubeconfig(d, {"apiVersion": V1, "command": str(d / "plugin"), "interactiveMode": "Never"}))

    async def main() -> str:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, text=request.headers["Authorization"])

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=cfg.auth()) as c:
            return (await c.get("http://h/")).text

    assert asyncio.run(main()) == "Bearer async-tok"


def test_client_certificate_result_goes_into_the_ssl_context(tmp_path: Path, pki: Pki) -> None:
    d = tmp_path / "p"
    script(d, "plugin", GOOD)
    status(d, clientCertificateData=pki.client_cert_pem.decode(), clientKeyData=pki.client_key_pem.decode())
    cfg = load_config(kubeconfig(d, {"apiVersion": V1, "command": str(d / "plugin"), "interactiveMode": "Never"},
                                 cluster={"server": "https://127.0.0.1:1",
                                          "certificate-authority-data": base64.b64encode(pki.ca_pem).decode()}))
    before = cfg.ssl_context
    assert header(cfg) is None  # no token: the certificate is the credential
    after = cfg.ssl_context
    assert after is not before and cfg.ssl_context is after  # rebuilt once, then shared
    auth = cfg.auth()
    assert isinstance(auth, ExecAuth) and "PRIVATE" not in repr(auth.provider.last())


def test_failing_plugin_reports_stderr_and_exit_code(tmp_path: Path) -> None:
    d = tmp_path / "p"
    script(d, "plugin", FAILING)
    cfg = load_config(kubeconfig(d, {"apiVersion": V1, "command": str(d / "plugin"), "interactiveMode": "Never"}))
    with pytest.raises(errors.AuthError) as ei:
        header(cfg)
    msg = str(ei.value)
    assert "exit code 3" in msg and "you must log in first" in msg and str(d / "plugin") in msg


def test_garbage_output_is_an_auth_error_without_the_output(tmp_path: Path) -> None:
    d = tmp_path / "p"
    script(d, "plugin", GARBAGE)
    cfg = load_config(kubeconfig(d, {"apiVersion": V1, "command": str(d / "plugin"), "interactiveMode": "Never"}))
    with pytest.raises(errors.AuthError) as ei:
        header(cfg)
    msg = str(ei.value)
    assert "not print an ExecCredential" in msg and "deprecated flag" in msg
    assert "abc123" not in msg  # stdout may hold a secret


@pytest.mark.parametrize(("st", "env_version", "needle"), [
    ({"token": "t"}, V1BETA1, "apiVersion"),
    ({}, V1, "neither a token nor a client certificate"),
    ({"clientCertificateData": "x"}, V1, "must come together"),
    ({"token": "t", "expirationTimestamp": "soon"}, V1, "RFC 3339"),
])
def test_bad_credentials(tmp_path: Path, st: dict[str, Any], env_version: str, needle: str) -> None:
    d = tmp_path / "p"
    script(d, "plugin", GOOD)
    status(d, **st)
    cfg = load_config(kubeconfig(d, {"apiVersion": V1, "command": str(d / "plugin"), "interactiveMode": "Never",
                                     "env": [{"name": "API_VERSION", "value": env_version}]}))
    with pytest.raises(errors.AuthError, match=needle):
        header(cfg)


def test_missing_command_shows_install_hint(tmp_path: Path) -> None:
    cfg = load_config(kubeconfig(tmp_path, {"apiVersion": V1, "command": "kfast-no-such-plugin",
                                            "interactiveMode": "Never", "installHint": "brew install it"}))
    with pytest.raises(errors.AuthError, match="brew install it"):
        header(cfg)


def test_interactive_always_without_terminal(tmp_path: Path) -> None:
    d = tmp_path / "p"
    script(d, "plugin", GOOD)
    cfg = load_config(kubeconfig(d, {"apiVersion": V1, "command": str(d / "plugin"), "interactiveMode": "Always"}))
    with pytest.raises(errors.AuthError, match="terminal"):
        header(cfg)


@pytest.mark.parametrize(("spec", "needle"), [
    ({"command": "x"}, "apiVersion"),
    ({"command": "x", "apiVersion": "client.authentication.k8s.io/v1alpha1"}, "apiVersion"),
    ({"command": "x", "apiVersion": V1}, "interactiveMode is required"),
    ({"command": "x", "apiVersion": V1BETA1, "interactiveMode": "Sometimes"}, "interactiveMode"),
    ({"apiVersion": V1BETA1}, "command"),
    ({"command": "x", "apiVersion": V1BETA1, "env": [{"value": "v"}]}, "env[0]"),
])
def test_bad_exec_sections_are_config_errors(tmp_path: Path, spec: dict[str, Any], needle: str) -> None:
    kc = kubeconfig(tmp_path, spec)
    with pytest.raises(errors.ConfigError) as ei:
        load_config(kc)
    assert needle in str(ei.value) and str(kc) in str(ei.value)


def test_interactive_if_available_with_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kfast._exec

    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(kfast._exec.sys, "stdin", Tty())
    d = tmp_path / "p"
    script(d, "plugin", GOOD)
    status(d, token="t")
    cfg = load_config(kubeconfig(d, {"apiVersion": V1, "command": str(d / "plugin"), "interactiveMode": "IfAvailable"}))
    assert header(cfg) == "Bearer t"
    assert json.loads((d / "seen.json").read_text())["info"]["spec"]["interactive"] is True


# Starts a child that would hold stdout open, records both pids, then hangs.
HANGING = """#!/bin/sh
sleep 600 &
echo "$$ $!" > "$(dirname "$0")/pids"
sleep 600
"""


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_hanging_plugin_times_out_with_auth_error_and_is_killed(tmp_path: Path) -> None:
    import dataclasses
    import time

    from kfast._exec import DEFAULT_EXEC_TIMEOUT_SECONDS

    d = tmp_path / "p"
    script(d, "plugin", HANGING)
    cfg = load_config(kubeconfig(d, {"apiVersion": V1, "command": str(d / "plugin"), "interactiveMode": "Never"}))
    assert cfg.exec_config is not None and cfg.exec_config.timeout == DEFAULT_EXEC_TIMEOUT_SECONDS == 300
    cfg = cfg.replace(exec_config=dataclasses.replace(cfg.exec_config, timeout=0.5))
    start = time.monotonic()
    with pytest.raises(errors.AuthError) as ei:
        header(cfg)
    assert time.monotonic() - start < 5  # not held up by the child that still had stdout
    assert f"exec plugin {d / 'plugin'} did not finish within 0.5 s and was killed" in str(ei.value)
    assert ei.value.__cause__ is not None
    pids = [int(p) for p in (d / "pids").read_text().split()]
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids), pids  # the plugin and what it started


def test_hanging_plugin_times_out_through_the_async_client(tmp_path: Path) -> None:
    import dataclasses

    from kfast import AsyncClient, RetryPolicy

    d = tmp_path / "p"
    script(d, "plugin", HANGING)
    cfg = load_config(kubeconfig(d, {"apiVersion": V1, "command": str(d / "plugin"), "interactiveMode": "Never"}))
    assert cfg.exec_config is not None
    cfg = cfg.replace(exec_config=dataclasses.replace(cfg.exec_config, timeout=0.3))

    async def main() -> None:
        async with AsyncClient(cfg, retry=RetryPolicy(max_attempts=1)) as c:
            await c.get("/api")

    with pytest.raises(errors.AuthError, match="did not finish within 0.3 s"):
        asyncio.run(main())
