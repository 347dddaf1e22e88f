"""kfast's own watch path and informer against the real kube-apiserver: the in-stream 410
surfaces as kfast's typed error, and an informer over Pods ends equal to a fresh LIST (names,
uids, resourceVersions) with handlers having seen every change."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kube_http import create

import kfast
from kfast._wire import Wire
from kfast.testing import Cluster

pytestmark = pytest.mark.integration


def eventually(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def pod(name: str, image: str = "busybox:1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "t"}},
            "spec": {"containers": [{"name": "c", "image": image}]}}


@pytest.mark.parametrize("direct", [True, False], ids=["socket", "httpx-fallback"])
def test_watch_from_rv_1_raises_typed_gone(cluster: Cluster, namespace: str, direct: bool) -> None:
    cfg = kfast.load_config(cluster.kubeconfig)
    # A user-supplied httpx transport forces the httpx streaming fallback (same decoder).
    wire = Wire(cfg) if direct else Wire(cfg, transport=httpx.HTTPTransport(verify=cfg.ssl_context))
    assert wire.direct is direct
    try:
        stream = wire.watch(f"/api/v1/namespaces/{namespace}/configmaps",
                            {"watch": "true", "resourceVersion": "1", "timeoutSeconds": "10"})
        with pytest.raises(kfast.errors.Gone) as ei:
            for _ in stream.events():
                pass
    finally:
        wire.close()
    err = ei.value
    assert err.code == 410
    assert err.reason == "Expired"
    assert "too old resource version: 1 (" in err.message


def test_pod_informer_matches_fresh_list(cluster: Cluster, admin: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    for i in range(3):
        create(admin, base, pod(f"p{i}"))
    cfg = kfast.load_config(cluster.kubeconfig)
    inf = kfast.SharedIndexInformer(cfg, "pods", namespace=namespace)
    seen: list[tuple[str, str, str]] = []
    lock = threading.Lock()

    def on_add(obj: Any, initial: bool) -> None:
        with lock:
            seen.append(("add", obj.name, obj.uid))

    def on_update(old: Any, new: Any) -> None:
        with lock:
            seen.append(("update", new.name, new.resource_version))

    def on_delete(obj: Any) -> None:
        o = obj.obj if isinstance(obj, kfast.DeletedFinalStateUnknown) else obj
        with lock:
            seen.append(("delete", o.name, o.uid))

    inf.add_event_handler(on_add=on_add, on_update=on_update, on_delete=on_delete)
    inf.start()
    try:
        assert inf.wait_for_sync(30)
        created = create(admin, base, pod("late"))
        r = admin.patch(f"{base}/p0", json={"metadata": {"labels": {"changed": "yes"}}},
                        headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        updated_rv = r.json()["metadata"]["resourceVersion"]
        gone = admin.get(f"{base}/p1").json()
        r = admin.delete(f"{base}/p1", params={"gracePeriodSeconds": "0"})
        assert r.status_code == 200, r.text

        def fresh() -> dict[str, tuple[str, str]]:
            items = admin.get(base).json()["items"]
            return {f"{namespace}/{i['metadata']['name']}":
                    (i["metadata"]["uid"], i["metadata"]["resourceVersion"]) for i in items}

        def cached() -> dict[str, tuple[str, str]]:
            return {o.key: (o.uid, o.resource_version) for o in inf.indexer.list()}

        eventually(lambda: cached() == fresh())
        eventually(lambda: ("delete", "p1", gone["metadata"]["uid"]) in seen)
        with lock:
            assert ("add", "late", created["metadata"]["uid"]) in seen
            assert ("update", "p0", updated_rv) in seen
            assert sorted(n for k, n, _ in seen if k == "add") == ["late", "p0", "p1", "p2"]
        got = inf.lister.get("p0", namespace)
        assert got is not None and got["metadata"]["labels"]["changed"] == "yes"
        assert got["spec"]["containers"][0]["image"] == "busybox:1"
    finally:
        inf.stop()
