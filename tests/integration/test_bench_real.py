"""`kfast bench --kubeconfig` against the real kube-apiserver: it lists a few thousand
ConfigMaps, watches, and reports figures that match what the test wrote."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from kfast.testing.apiserver import Cluster

pytestmark = pytest.mark.integration

OBJECTS = 2000
LATE = 40


def _create(cluster: Cluster, namespace: str, names: list[str]) -> None:
    with cluster.client() as c:
        for name in names:
            r = c.post(
                f"/api/v1/namespaces/{namespace}/configmaps",
                json={"metadata": {"name": name, "labels": {"app": "bench"}},
                      "data": {"payload": "x" * 800}},
            )
            assert r.status_code == 201, r.text


def test_kfast_bench_against_real_cluster(cluster: Cluster, admin: httpx.Client, namespace: str) -> None:
    names = [f"cm-{i:05d}" for i in range(OBJECTS)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda part: _create(cluster, namespace, part),
                      [names[i::4] for i in range(4)]))

    def late_writes() -> None:
        # Once the bench is watching, write more objects: it must count them as events.
        time.sleep(4.0)
        _create(cluster, namespace, [f"late-{i:03d}" for i in range(LATE)])

    writer = threading.Thread(target=late_writes)
    writer.start()
    proc = subprocess.run(
        [sys.executable, "-m", "kfast", "bench", "--kubeconfig", str(cluster.kubeconfig),
         "--resource", "configmaps", "--namespace", namespace, "--duration", "8",
         "--json", "-q"],
        capture_output=True, text=True, timeout=180,
    )
    writer.join()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["mode"] == "cluster"
    assert out["resource"] == "configmaps"
    # Normally every late write lands in the watch phase; on a slow machine some may
    # land in the initial list instead. Either way none is lost or counted twice.
    assert OBJECTS <= out["objects"] <= OBJECTS + LATE
    assert out["objects"] + out["watch_events"] == OBJECTS + LATE
    assert out["sync_seconds"] > 0
    assert out["sync_objects_per_second"] > 0
    assert out["mean_object_json_bytes"] > 800
    assert out["peak_rss_bytes"] > 0
