"""SharedIndexInformer against a real kube-apiserver: kubeconfig + TLS client certs/tokens,
the raw-socket watch path, handlers, lister, and recovery across an apiserver restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from kube_http import configmap, create

import kfast
from kfast import index
from kfast._reflector import ListRequest, Sleep, WatchRequest
from kfast.testing import ADMIN, TOKEN_ADMIN, Cluster

pytestmark = pytest.mark.integration


def eventually(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def server_state(admin: httpx.Client, ns: str) -> dict[str, str]:
    items = admin.get(f"/api/v1/namespaces/{ns}/configmaps").json()["items"]
    return {f"{ns}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in items}


def cache_state(inf: kfast.SharedIndexInformer) -> dict[str, str]:
    return {o.key: o.resource_version for o in inf.indexer.list()}


@pytest.fixture
def informer_for(cluster: Cluster) -> Iterator[Callable[..., kfast.SharedIndexInformer]]:
    made: list[kfast.SharedIndexInformer] = []

    def make(ns: str, user: str = ADMIN, **kw: Any) -> kfast.SharedIndexInformer:
        cfg = kfast.load_config(cluster.kubeconfig, context=cluster.context(user))
        inf = kfast.SharedIndexInformer(cfg, "configmaps", namespace=ns, **kw)
        made.append(inf)
        return inf

    yield make
    for inf in made:
        inf.stop()


@pytest.mark.parametrize("user", [ADMIN, TOKEN_ADMIN])
def test_sync_events_and_lister(admin: httpx.Client, namespace: str, user: str,
                                informer_for: Callable[..., kfast.SharedIndexInformer]) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(5):
        create(admin, base, configmap(f"cm{i}", i=str(i)))
    inf = informer_for(namespace, user, indexers={"app": index.by_label("app")})
    assert inf._wire.direct and inf.config.is_https
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def rec(kind: str) -> Callable[..., None]:
        def f(*objs: Any) -> None:
            with lock:
                # on_add(obj, is_in_initial_list), on_update(old, new), on_delete(obj)
                seen.append((kind, objs[1].key if kind == "update" else objs[0].key))
        return f

    inf.add_event_handler(on_add=rec("add"), on_update=rec("update"), on_delete=rec("delete"))
    inf.start()
    assert inf.wait_for_sync(30)
    assert cache_state(inf) == server_state(admin, namespace)
    body = configmap("new", x="1")
    body["metadata"]["labels"] = {"app": "demo"}
    create(admin, base, body)
    r = admin.patch(f"{base}/cm0", json={"data": {"i": "changed"}},
                    headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert admin.delete(f"{base}/cm1").status_code == 200
    eventually(lambda: cache_state(inf) == server_state(admin, namespace))
    eventually(lambda: ("delete", f"{namespace}/cm1") in seen)
    assert ("add", f"{namespace}/new") in seen and ("update", f"{namespace}/cm0") in seen
    got = inf.lister.get("cm0", namespace)
    assert got is not None and got["data"]["i"] == "changed"
    assert [o.name for o in inf.lister.by_index("app", "demo")] == ["new"]
    assert [o.name for o in inf.lister.list(label_selector="app in (demo)")] == ["new"]


def test_recovers_across_apiserver_restart(cluster: Cluster, admin: httpx.Client, namespace: str,
                                           informer_for: Callable[..., kfast.SharedIndexInformer]) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(3):
        create(admin, base, configmap(f"cm{i}", i=str(i)))
    inf = informer_for(namespace)
    deletes: list[Any] = []
    inf.add_event_handler(on_delete=deletes.append)
    inf.start()
    assert inf.wait_for_sync(30)
    watches_before = sum(isinstance(a, WatchRequest) for a in inf.runner.history)
    cluster.restart_apiserver()
    # While the informer may be disconnected, change the world.
    with cluster.client(ADMIN) as c:
        assert c.delete(f"{base}/cm0").status_code == 200
        create(c, base, configmap("after", k="v"))
        eventually(lambda: cache_state(inf) == server_state(c, namespace), timeout=60)
    assert sum(isinstance(a, WatchRequest) for a in inf.runner.history) > watches_before
    assert [d.key for d in deletes] == [f"{namespace}/cm0"]
    # Whatever path it took (resume, backoff, or 410 relist), it never fell back to RV "0".
    lists = [a for a in inf.runner.history if isinstance(a, ListRequest)]
    assert all(a.params.get("resourceVersion") != "0" for a in lists[1:])
    history = [type(a).__name__ for a in inf.runner.history]
    print("reflector actions:", history, "last error:", repr(inf.runner.last_error))
    assert Sleep.__name__ in history or len(lists) >= 1
