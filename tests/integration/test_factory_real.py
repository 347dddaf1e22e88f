"""SharedInformerFactory against a real kube-apiserver, including a CustomResourceDefinition."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from kube_http import configmap, create

import kfast
from kfast.testing import ADMIN, Cluster

pytestmark = pytest.mark.integration

GVR = kfast.GroupVersionResource


def _crd(group: str, plural: str) -> dict[str, object]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": plural[:-1], "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
    }


def _until(cond: object, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.1)


def test_factory_shares_informers_for_builtin_and_custom_resources(cluster: Cluster, admin: httpx.Client,
                                                                   namespace: str) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    crd = _crd(group, "widgets")
    create(admin, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)

    def established() -> bool:
        r = admin.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")
        conds = (r.json().get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

    _until(established)
    base = f"/apis/{group}/v1/namespaces/{namespace}/widgets"
    _until(lambda: admin.get(base).status_code == 200)
    for i in range(3):
        create(admin, base, {"apiVersion": f"{group}/v1", "kind": "Widget",
                             "metadata": {"name": f"w{i}"}, "spec": {"size": i}})
    create(admin, f"/api/v1/namespaces/{namespace}/configmaps", configmap("c"))
    cfg = kfast.load_config(cluster.kubeconfig, context=cluster.context(ADMIN))
    with kfast.SharedInformerFactory(cfg, namespace=namespace) as f:
        widgets = f.for_resource(GVR(group, "v1", "widgets"))
        assert f.for_resource(f"widgets.v1.{group}") is widgets
        cms = f.for_resource("configmaps")
        # Without a resolver, names go through discovery: kind, short name, group forms.
        assert f.for_resource("Widget") is widgets
        assert f.for_resource(f"widgets.{group}") is widgets
        assert f.for_resource("cm") is cms
        with pytest.raises(kfast.errors.NoMatchError):
            f.for_resource("nosuchthings")
        f.start()
        assert set(f.wait_for_cache_sync(30).values()) == {True}
        assert sorted(w.name for w in widgets.lister.list()) == ["w0", "w1", "w2"]
        assert widgets.lister.get("w2")["spec"]["size"] == 2  # type: ignore[index]
        assert "c" in [o.name for o in cms.lister.list()]
        assert widgets.metrics().streaming_list is True
        create(admin, base, {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w9"}})
        _until(lambda: widgets.lister.get("w9") is not None)
