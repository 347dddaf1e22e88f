"""Native transforms against a real kube-apiserver, whose objects carry real managedFields
(server-side field management records every create and update)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import msgspec
import pytest
from kube_http import create

import kfast
from kfast import transforms
from kfast.testing import ADMIN, Cluster

pytestmark = pytest.mark.integration

LAST_APPLIED = transforms.LAST_APPLIED[-1]


def eventually(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("watch_list", [True, False], ids=["streaming", "list"])
def test_cached_objects_lack_managed_fields_and_keep_their_metadata(
        cluster: Cluster, admin: httpx.Client, namespace: str, watch_list: bool) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"

    def cm(i: int) -> dict[str, object]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": str(i)}, "metadata": {
            "name": f"cm-{i}", "labels": {"app": f"a{i % 2}"},
            "annotations": {LAST_APPLIED: '{"kind":"ConfigMap"}\n', "keep": "yes"}}}

    for i in range(6):
        create(admin, base, cm(i))
    sent = admin.get(base).json()["items"]
    assert all(it["metadata"].get("managedFields") for it in sent)  # the server's own
    cfg = kfast.load_config(cluster.kubeconfig, context=cluster.context(ADMIN))
    inf = kfast.SharedIndexInformer(
        cfg, "configmaps", namespace=namespace, watch_list=watch_list,
        transform=transforms.drop_managed_fields() + transforms.drop_last_applied(),
        indexers={"app": kfast.IndexFunc.label("app")})
    with inf:
        assert inf.wait_for_sync(30)
        assert inf.metrics().streaming_list is (True if watch_list else None)
        create(admin, base, cm(6))
        r = admin.put(f"{base}/cm-0", json={**cm(0), "data": {"k": "changed"}})
        assert r.status_code == 200, r.text
        want = {f"{namespace}/{it['metadata']['name']}": it["metadata"]["resourceVersion"]
                for it in admin.get(base).json()["items"]}
        eventually(lambda: {o.key: o.resource_version for o in inf.indexer.list()} == want)
        for o in inf.indexer.list():
            doc = msgspec.json.decode(bytes(o))
            m = doc["metadata"]
            assert "managedFields" not in m and m["annotations"] == {"keep": "yes"}
            assert (o.name, o.namespace, o.uid, o.labels) == (m["name"], namespace, m["uid"], m["labels"])
        assert sorted(o.name for o in inf.indexer.by_index("app", "a0")) == ["cm-0", "cm-2", "cm-4", "cm-6"]
        view = inf.lister.get("cm-0", namespace)
        assert view is not None and view["data"] == {"k": "changed"}
