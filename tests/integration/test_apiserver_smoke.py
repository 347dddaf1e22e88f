"""The test cluster is up, is the right version, and serves core CRUD."""

from __future__ import annotations

import httpx
import pytest
import yaml
from kube_http import configmap, create

from kfast.testing import ADMIN, KUBE_VERSION, USER, Cluster

pytestmark = pytest.mark.integration


def test_readyz(admin: httpx.Client) -> None:
    r = admin.get("/readyz", params={"verbose": "true"})
    assert r.status_code == 200
    assert "readyz check passed" in r.text
    # Watch caches are initialised before readyz passes (a GA post-start hook in 1.37).
    assert "[+]etcd ok" in r.text


def test_version_is_stamped(admin: httpx.Client) -> None:
    v = admin.get("/version").json()
    assert v["gitVersion"] == KUBE_VERSION
    assert (v["major"], v["minor"]) == ("1", "37")
    assert v["gitTreeState"] == "clean"


def test_serving_certificate_verifies_for_localhost(cluster: Cluster) -> None:
    with httpx.Client(verify=cluster.ssl_context(ADMIN)) as c:
        assert c.get(f"https://localhost:{cluster.port}/readyz").status_code == 200


def test_kubeconfig_has_a_context_per_user(cluster: Cluster) -> None:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    assert config["current-context"] == cluster.context(ADMIN)
    contexts = {c["name"]: c["context"]["user"] for c in config["contexts"]}
    assert contexts == {cluster.context(u): u for u in cluster.users}
    (server,) = {c["cluster"]["server"] for c in config["clusters"]}
    assert server == cluster.url


def test_namespace_create_update_delete(admin: httpx.Client) -> None:
    ns = create(admin, "/api/v1/namespaces", {"metadata": {"name": "kfast-smoke-ns"}})
    path = "/api/v1/namespaces/kfast-smoke-ns"
    ns["metadata"].setdefault("labels", {})["kfast.dev/smoke"] = "yes"
    r = admin.put(path, json=ns)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["labels"]["kfast.dev/smoke"] == "yes"
    r = admin.delete(path)
    assert r.status_code == 200, r.text
    # No namespace controller runs, so the namespace stays Terminating rather than vanishing.
    assert admin.get(path).json()["status"]["phase"] == "Terminating"


def test_configmap_lifecycle(admin: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    cm = create(admin, base, configmap("cm1", a="1"))
    rv1 = cm["metadata"]["resourceVersion"]

    cm["data"]["a"] = "2"
    r = admin.put(f"{base}/cm1", json=cm)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["resourceVersion"] != rv1

    # A write with the stale resourceVersion is a 409 Conflict Status.
    cm["data"]["a"] = "3"
    r = admin.put(f"{base}/cm1", json=cm)
    assert r.status_code == 409
    assert r.json()["reason"] == "Conflict"

    r = admin.patch(
        f"{base}/cm1",
        json={"data": {"b": "x"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"a": "2", "b": "x"}

    create(admin, base, configmap("cm2"))
    names = [i["metadata"]["name"] for i in admin.get(base).json()["items"]]
    assert names == ["cm1", "cm2"]

    assert admin.delete(f"{base}/cm1").status_code == 200
    r = admin.get(f"{base}/cm1")
    assert r.status_code == 404
    assert r.json()["reason"] == "NotFound"


def test_pod_lifecycle(admin: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p1", "labels": {"app": "smoke"}},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:1"}]},
    }
    created = create(admin, base, pod)
    # No scheduler or kubelet: the pod is accepted and stays Pending, unscheduled.
    assert created["status"]["phase"] == "Pending"
    assert "nodeName" not in created["spec"]

    created["metadata"]["labels"]["tier"] = "x"
    r = admin.put(f"{base}/p1", json=created)
    assert r.status_code == 200, r.text

    r = admin.get(base, params={"labelSelector": "app=smoke,tier=x"})
    assert [p["metadata"]["name"] for p in r.json()["items"]] == ["p1"]

    # An unscheduled pod is deleted at once; nothing waits for a kubelet.
    assert admin.delete(f"{base}/p1").status_code == 200
    assert admin.get(f"{base}/p1").status_code == 404


def test_unprivileged_user_can_read_version_only(user: httpx.Client) -> None:
    assert user.get("/version").status_code == 200
    r = user.get("/api/v1/namespaces")
    assert r.status_code == 403
    status = r.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Forbidden", 403)
    assert f'User "{USER}" cannot list resource "namespaces"' in status["message"]
