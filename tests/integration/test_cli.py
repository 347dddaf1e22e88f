"""`python -m kfast.testing.apiserver`: start by hand, print the kubeconfig, stop on Ctrl-C."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from kfast.testing import Cluster

pytestmark = pytest.mark.integration


def test_cli_starts_prints_kubeconfig_and_stops_on_sigint(
    cluster: Cluster, tmp_path: Path
) -> None:
    workdir = tmp_path / "cli"
    env = {**os.environ, "KFAST_TESTENV_BIN": str(cluster.binaries.directory)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kfast.testing.apiserver", f"--workdir={workdir}",
         "--min-request-timeout=9"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("running"):
                break
        fields = dict(line.split(":", 1) for line in lines if ":" in line)
        kubeconfig = Path(fields["kubeconfig"].strip())
        assert kubeconfig == workdir / "kubeconfig"

        config = yaml.safe_load(kubeconfig.read_text())
        server = config["clusters"][0]["cluster"]["server"]
        assert server == fields["server"].strip()
        # The CLI made its own CA and users; use the files it left in the workdir.
        pki = workdir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "kfast-admin.crt"), str(pki / "kfast-admin.key"))
        with httpx.Client(verify=ctx) as http:
            assert http.get(f"{server}/version").json()["gitVersion"] == "v1.37.2"
        assert "--min-request-timeout=9" in (workdir / "kube-apiserver.log").read_text()

        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        assert "stopping..." in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Logs stay in a workdir the caller chose; the etcd data does not.
    assert (workdir / "kube-apiserver.log").exists()
    assert not (workdir / "etcd-data").exists()
