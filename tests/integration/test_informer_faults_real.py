"""Informers against a real kube-apiserver under faults: the streaming list, a 410 forced by
etcd compaction, delete + re-create during a gap, and watches cut short by the server.

The destructive tests run on a second cluster with its own etcd (compaction covers a whole
etcd) and ``--min-request-timeout=5``, so the session cluster stays clean for everyone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from kube_http import configmap, create, new_namespace

import kfast
from kfast._reflector import ReplaceStore, WatchListRequest, WatchRequest
from kfast._wire import WatchStream, Wire
from kfast.testing import ADMIN, Cluster

pytestmark = pytest.mark.integration


def eventually(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not met in {timeout}s")


def server_state(admin: httpx.Client, ns: str) -> dict[str, str]:
    items = admin.get(f"/api/v1/namespaces/{ns}/configmaps").json()["items"]
    return {f"{ns}/{i['metadata']['name']}": i["metadata"]["uid"] for i in items}


def cache_state(inf: kfast.SharedIndexInformer) -> dict[str, str]:
    return {o.key: o.uid for o in inf.indexer.list()}


class GatedWire(Wire):
    """A Wire whose new watches wait while the gate is shut: the informer is "disconnected"
    for as long as the test wants, without touching the server."""

    def __init__(self, config: kfast.Config) -> None:
        super().__init__(config)
        self.gate = threading.Event()
        self.gate.set()
        self.streams: list[WatchStream] = []

    def watch(self, path: str, params: dict[str, str], accept: str = "application/json") -> WatchStream:
        self.gate.wait()
        s = super().watch(path, params, accept)
        self.streams.append(s)
        return s

    def disconnect(self) -> None:
        self.gate.clear()
        for s in self.streams:
            s.close()


class History:
    """Every notification, in order, as (kind, key, uid, tombstone, initial)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, bool, bool]] = []
        self.lock = threading.Lock()

    def on_add(self, o: kfast.ObjectView, initial: bool) -> None:
        with self.lock:
            self.events.append(("add", o.key, o.uid, False, initial))

    def on_update(self, _old: kfast.ObjectView, new: kfast.ObjectView) -> None:
        with self.lock:
            self.events.append(("update", new.key, new.uid, False, False))

    def on_delete(self, o: Any) -> None:
        tomb = isinstance(o, kfast.DeletedFinalStateUnknown)
        uid = (o.obj.uid if o.obj is not None else "") if tomb else o.uid
        with self.lock:
            self.events.append(("delete", o.key, uid, tomb, False))


@pytest.fixture(scope="module")
def nocache(cluster: Cluster) -> Iterator[Cluster]:
    """Watches served by etcd itself (apiserver.md section 6): after a compaction a watch
    from an older RV answers 410 at once. (The watch cache keeps events in memory and only
    forgets them when its buffer fills, so it does not make compaction observable.)"""
    other = cluster.start_second_cluster(["--watch-cache=false"])
    yield other
    other.stop()


def test_streaming_list_on_the_real_server(cluster: Cluster, admin: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(25):
        create(admin, base, configmap(f"cm{i}", i=str(i)))
    cfg = kfast.load_config(cluster.kubeconfig, context=cluster.context(ADMIN))
    inf = kfast.SharedIndexInformer(cfg, "configmaps", namespace=namespace)
    hist = History()
    stored_at_first: list[int] = []

    def on_add(o: kfast.ObjectView, initial: bool) -> None:
        if not stored_at_first:
            stored_at_first.append(len(inf.indexer))
        hist.on_add(o, initial)

    inf.add_event_handler(on_add)
    with inf:
        assert inf.wait_for_sync(30)
        assert cache_state(inf) == server_state(admin, namespace)
        assert isinstance(inf.runner.history[0], WatchListRequest)
        assert inf.metrics().streaming_list is True and inf.metrics().initial_events == 25
        replace = next(a for a in inf.runner.history if isinstance(a, ReplaceStore))
        assert replace.resource_version  # the initial-events-end bookmark's RV
        eventually(lambda: len(hist.events) == 25)
        assert stored_at_first == [25]  # replaced at once: no handler saw a partial set
        assert {e[1] for e in hist.events if e[4]} == set(server_state(admin, namespace))
        create(admin, base, configmap("later"))
        eventually(lambda: len(hist.events) == 26)
        assert hist.events[-1][:2] == ("add", f"{namespace}/later") and hist.events[-1][4] is False
        # Exactly the initial objects were flagged initial.
        assert sum(e[4] for e in hist.events) == 25
        assert not any(isinstance(a, WatchRequest) for a in inf.runner.history)


def test_410_by_compaction_relists_with_tombstones_and_new_uids(nocache: Cluster) -> None:
    # Two informers, one per initial-sync path, share the gap and the compaction.
    chaos = nocache
    chaos_admin = chaos.client(ADMIN)
    ns = new_namespace(chaos_admin, "i")
    base = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(6):
        create(chaos_admin, base, configmap(f"cm{i}", i=str(i)))
    cfg = kfast.load_config(chaos.kubeconfig, context=chaos.context(ADMIN))
    setups = []
    for watch_list in (True, False):
        wire = GatedWire(cfg)
        inf = kfast.SharedIndexInformer(cfg, "configmaps", namespace=ns, wire=wire, watch_list=watch_list)
        hist = History()
        inf.add_event_handler(hist.on_add, hist.on_update, hist.on_delete)
        inf.start()
        setups.append((inf, wire, hist))
    try:
        for inf, _w, hist in setups:
            assert inf.wait_for_sync(30)
            eventually(lambda: len(hist.events) == 6)
        old_uid = setups[0][0].indexer.get_by_key(f"{ns}/cm2").uid  # type: ignore[union-attr]
        for _inf, wire, _h in setups:
            wire.disconnect()
        synced_rv = max((inf.reflector.last_synced_rv for inf, _w, _h in setups), key=int)
        # The gap: a delete, a create, and a delete + re-create under the same name.
        assert chaos_admin.delete(f"{base}/cm1").status_code == 200
        create(chaos_admin, base, configmap("in-gap"))
        assert chaos_admin.delete(f"{base}/cm2").status_code == 200
        new_uid = create(chaos_admin, base, configmap("cm2", v="new"))["metadata"]["uid"]
        for i in range(5):  # move the revision on past the gap's events
            create(chaos_admin, base, configmap(f"pad{i}"))
        chaos.compact_etcd()

        def watch_is_gone() -> bool:
            with chaos_admin.stream("GET", base, params={
                    "watch": "true", "resourceVersion": synced_rv, "timeoutSeconds": "1"}) as r:
                for line in r.iter_lines():
                    if '"code":410' in line.replace(" ", ""):
                        return True
            return False

        eventually(watch_is_gone, timeout=60, what="a watch at the old RV answering 410")
        for inf, wire, hist in setups:
            wire.gate.set()
        for inf, wire, hist in setups:
            eventually(lambda: cache_state(inf) == server_state(chaos_admin, ns), timeout=60,
                       what="cache equal to a fresh LIST")
            m = inf.metrics()
            assert m.relists >= 1, m
            assert isinstance(inf.runner.last_error, kfast.errors.Gone)
            events = list(hist.events[6:])
            dels = [e for e in events if e[0] == "delete"]
            assert sorted((e[1], e[3]) for e in dels) == [(f"{ns}/cm1", True), (f"{ns}/cm2", True)]
            cm2 = [e for e in events if e[1] == f"{ns}/cm2"]
            assert [(e[0], e[2]) for e in cm2] == [("delete", old_uid), ("add", new_uid)]
            assert inf.indexer.get_by_key(f"{ns}/cm2").uid == new_uid  # type: ignore[union-attr]
            adds = {e[1] for e in events if e[0] == "add"}
            assert adds == {f"{ns}/in-gap", f"{ns}/cm2"} | {f"{ns}/pad{i}" for i in range(5)}
        print("streaming list on an uncached server:", setups[0][0].metrics().streaming_list)
        assert setups[1][0].metrics().streaming_list is None
    finally:
        for inf, wire, _h in setups:
            wire.gate.set()
            inf.stop()
        chaos_admin.close()


def test_short_server_timeouts_resume_without_relisting(chaos: Cluster, chaos_admin: httpx.Client) -> None:
    ns, other = new_namespace(chaos_admin, "i"), new_namespace(chaos_admin, "i")
    base = f"/api/v1/namespaces/{ns}/configmaps"
    create(chaos_admin, base, configmap("a"))
    cfg = kfast.load_config(chaos.kubeconfig, context=chaos.context(ADMIN))
    # No timeoutSeconds: the server ends each watch after 5-10 s (--min-request-timeout=5).
    inf = kfast.SharedIndexInformer(cfg, "configmaps", namespace=ns, min_watch_timeout=0)
    own_rvs: set[str] = set()
    inf.add_event_handler(lambda o: own_rvs.add(o.resource_version))
    with inf:
        assert inf.wait_for_sync(30)
        deadline = time.monotonic() + 22
        i = 0
        while time.monotonic() < deadline:
            # Our namespace changes only early on; later only the other one moves the RV.
            create(chaos_admin, base if i in (0, 3) else f"/api/v1/namespaces/{other}/configmaps",
                   configmap(f"c{i}"))
            i += 1
            time.sleep(1.0)
        eventually(lambda: {k for k in cache_state(inf)} == set(server_state(chaos_admin, ns)))
        m = inf.metrics()
        watches = [a for a in inf.runner.history if isinstance(a, WatchRequest)]
        assert len(watches) >= 2 and m.watch_restarts >= 2, m
        assert m.relists == 0 and m.lists == 1
        assert all("timeoutSeconds" not in w.params for w in watches)
        # Bookmarks carried the RV on (the other namespace moves the revision, our watch sees
        # none of its objects): some watch resumed from an RV no event of ours carried.
        replaced = {a.resource_version for a in inf.runner.history if isinstance(a, ReplaceStore)}
        from_bookmarks = {w.params["resourceVersion"] for w in watches} - own_rvs - replaced
        assert m.bookmarks >= 1 and from_bookmarks, (own_rvs, replaced, watches)
