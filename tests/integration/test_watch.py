"""Watch behaviour of the real server that kfast's watch loop is written against
(docs/protocol.md): in-stream 410, WatchList's initial-events-end bookmark, plain events."""

from __future__ import annotations

import httpx
import pytest
from kube_http import configmap, create, is_initial_events_end, watch

pytestmark = pytest.mark.integration


def test_watch_from_rv_1_gets_in_stream_410(admin: httpx.Client, namespace: str) -> None:
    # The watch cache starts from the revision at apiserver start, so "1" is too old: the
    # answer is HTTP 200 and then one ERROR event carrying an Expired Status.
    events = watch(
        admin,
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"resourceVersion": "1"},
        until=lambda e: e["type"] == "ERROR",
    )
    assert len(events) == 1
    status = events[0]["object"]
    assert status["kind"] == "Status"
    assert status["apiVersion"] == "v1"
    assert status["status"] == "Failure"
    assert status["code"] == 410
    assert status["reason"] == "Expired"
    assert "too old resource version: 1 (" in status["message"]


def test_watch_delivers_changes_after_list_rv(admin: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    rv = admin.get(base).json()["metadata"]["resourceVersion"]
    create(admin, base, configmap("w1", k="v"))
    assert admin.delete(f"{base}/w1").status_code == 200
    events = watch(admin, base, {"resourceVersion": rv}, until=lambda e: e["type"] == "DELETED")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w1"),
        ("DELETED", "w1"),
    ]


def test_watchlist_ends_initial_events_with_bookmark(
    admin: httpx.Client, namespace: str
) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(3):
        create(admin, base, configmap(f"cm{i}", i=str(i)))
    events = watch(
        admin,
        base,
        {
            "sendInitialEvents": "true",
            "resourceVersionMatch": "NotOlderThan",
            "allowWatchBookmarks": "true",
        },
        until=is_initial_events_end,
    )
    *initial, bookmark = events
    # kube-root-ca.crt is not there: no controller-manager publishes it.
    assert sorted(e["object"]["metadata"]["name"] for e in initial) == ["cm0", "cm1", "cm2"]
    assert {e["type"] for e in initial} == {"ADDED"}
    meta = bookmark["object"]["metadata"]
    assert bookmark["object"]["kind"] == "ConfigMap"
    assert meta["resourceVersion"]
    # The bookmark's RV is the snapshot the initial events describe: a watch from it
    # starts after them, so the first thing it sees is a new write.
    create(admin, base, configmap("after"))
    later = watch(admin, base, {"resourceVersion": meta["resourceVersion"]},
                  until=lambda e: e["type"] == "ADDED")
    assert [e["object"]["metadata"]["name"] for e in later] == ["after"]


def test_watch_denied_to_unprivileged_user_is_http_403(user: httpx.Client) -> None:
    r = user.get("/api/v1/configmaps", params={"watch": "true"})
    assert r.status_code == 403
    assert r.json()["reason"] == "Forbidden"


# TODO(integrator): informer-level tests (kfast's SharedIndexInformer against this cluster:
# initial sync through WatchList, relist after the in-stream 410, resume after
# restart_apiserver(), behaviour under apf_jail()) belong here once the informer lands.
