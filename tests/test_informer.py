"""SharedIndexInformer end to end over loopback, against the embedded simulator, on the
LIST + WATCH path (``watch_list=False``); the streaming list has test_watch_list.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import kfast
from kfast import index
from kfast._reflector import ListRequest, Sleep, WatchRequest
from kfast.simulator import Simulator


def eventually(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def on_add(self, obj: kfast.ObjectView, initial: bool) -> None:
        with self.lock:
            self.events.append(("add", (obj.key, obj.resource_version, initial)))

    def on_update(self, old: kfast.ObjectView, new: kfast.ObjectView) -> None:
        with self.lock:
            self.events.append(("update", (new.key, old.resource_version, new.resource_version)))

    def on_delete(self, obj: Any) -> None:
        with self.lock:
            self.events.append(("delete", obj))

    def of(self, kind: str) -> list[Any]:
        with self.lock:
            return [e for k, e in self.events if k == kind]


def cache_state(inf: kfast.SharedIndexInformer) -> dict[str, str]:
    return {o.key: o.resource_version for o in inf.indexer.list()}


@pytest.fixture()
def sim() -> Iterator[Simulator]:
    with Simulator(pods=300, seed=3, bookmark_interval=3600) as s:
        yield s


@pytest.fixture()
def informer(sim: Simulator) -> Iterator[tuple[kfast.SharedIndexInformer, Recorder]]:
    rec = Recorder()
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods", page_size=100, watch_list=False,
                                    indexers={"app": index.by_label("app"),
                                              "owner": index.by_owner_uid()})
    inf.add_event_handler(rec.on_add, rec.on_update, rec.on_delete)
    inf.start()
    assert inf.wait_for_sync(10)
    assert sim.wait_for_watches(1)
    yield inf, rec
    inf.stop()


def lists(inf: kfast.SharedIndexInformer) -> list[ListRequest]:
    return [a for a in inf.runner.history if isinstance(a, ListRequest)]


def watches(inf: kfast.SharedIndexInformer) -> list[WatchRequest]:
    return [a for a in inf.runner.history if isinstance(a, WatchRequest)]


def test_initial_sync_equals_server_and_is_paginated(sim: Simulator, informer: Any) -> None:
    inf, rec = informer
    assert cache_state(inf) == sim.state("pods")
    eventually(lambda: len(rec.of("add")) == 300)
    assert all(initial for _k, _rv, initial in rec.of("add"))
    assert [lr.params.get("limit") for lr in lists(inf)] == ["100"] * 3
    assert lists(inf)[0].params["resourceVersion"] == "0"
    assert watches(inf)[0].params["resourceVersion"] == sim.resource_version
    assert watches(inf)[0].params["allowWatchBookmarks"] == "true"


def test_changes_reach_handlers_in_order(sim: Simulator, informer: Any) -> None:
    inf, rec = informer
    k0, k1 = sim.keys()[:2]
    new = sim.create("pods", {"metadata": {"name": "fresh", "namespace": "default", "labels": {"app": "x"}}})
    sim.update("pods", k0)
    sim.update("pods", k0)
    sim.delete("pods", k1)
    sim.delete("pods", "default/fresh")
    eventually(lambda: len(rec.events) >= 300 + 5)
    tail = rec.events[300:]

    def key_of(e: tuple[str, Any]) -> str:
        return e[1].key if e[0] == "delete" else e[1][0]

    # The DeltaFIFO keeps order per key (keys in first-queued order), not across keys.
    per_key: dict[str, list[tuple[str, Any]]] = {}
    for e in tail:
        per_key.setdefault(key_of(e), []).append(e)
    assert [k for k, _ in per_key["default/fresh"]] == ["add", "delete"]
    assert [k for k, _ in per_key[k0]] == ["update", "update"]
    assert [k for k, _ in per_key[k1]] == ["delete"]
    add = per_key["default/fresh"][0][1]
    assert add[1] == new["metadata"]["resourceVersion"] and add[2] is False
    u1, u2 = per_key[k0][0][1], per_key[k0][1][1]
    assert u2[1] == u1[2]  # second update's old is the first update's new
    eventually(lambda: cache_state(inf) == sim.state("pods"))


def test_dropped_connection_resumes_without_relist(sim: Simulator, informer: Any) -> None:
    inf, rec = informer
    sim.update("pods", sim.keys()[0])
    eventually(lambda: len(rec.of("update")) == 1)
    rv = sim.resource_version
    n_lists = len(lists(inf))
    assert sim.break_open_watches("close") == 1
    eventually(lambda: len(watches(inf)) == 2)
    assert watches(inf)[1].params["resourceVersion"] == rv
    assert sim.wait_for_watches(1)
    sim.update("pods", sim.keys()[1])
    eventually(lambda: len(rec.of("update")) == 2)
    assert len(lists(inf)) == n_lists
    assert cache_state(inf) == sim.state("pods")


@pytest.mark.parametrize("fault", ["close_mid_line", "close_mid_chunk", "malformed"])
def test_damaged_stream_is_a_clean_retry(sim: Simulator, informer: Any, fault: str) -> None:
    inf, rec = informer
    n_lists = len(lists(inf))
    sim.break_open_watches(fault)
    eventually(lambda: len(watches(inf)) >= 2)
    assert not any(isinstance(a, Sleep) for a in inf.runner.history)
    assert sim.wait_for_watches(1)
    sim.update("pods", sim.keys()[2])
    eventually(lambda: cache_state(inf) == sim.state("pods"))
    assert len(lists(inf)) == n_lists
    assert isinstance(inf.runner.last_error, (kfast.errors.DecodeError, kfast.errors.StreamTruncated))


@pytest.mark.parametrize("fault", ["expired", "gone"])
def test_410_relists_at_last_rv(sim: Simulator, informer: Any, fault: str) -> None:
    inf, _rec = informer
    rv = sim.resource_version
    sim.break_open_watches(fault)
    eventually(lambda: len(lists(inf)) >= 4)
    assert lists(inf)[3].params["resourceVersion"] == rv
    # The simulator paginated the initial list, so the relist pages too, never Exact.
    assert lists(inf)[3].params["resourceVersionMatch"] == "NotOlderThan"
    eventually(lambda: len(watches(inf)) == 2)
    assert cache_state(inf) == sim.state("pods")


def test_429_backs_off_then_410_relists_with_tombstones(sim: Simulator, informer: Any) -> None:
    inf, rec = informer
    keys = sim.keys()
    sim.fail_next_requests(429, verb="watch", retry_after=3)
    sim.break_open_watches("close")
    eventually(lambda: any(isinstance(a, Sleep) for a in inf.runner.history))
    sleep = next(a for a in inf.runner.history if isinstance(a, Sleep))
    assert sleep.seconds >= 3.0
    assert isinstance(inf.runner.last_error, kfast.errors.TooManyRequests)
    # While the informer waits out Retry-After, objects change and history is compacted.
    sim.delete("pods", keys[0])
    sim.delete("pods", keys[1])
    sim.update("pods", keys[2])
    sim.create("pods", {"metadata": {"name": "during-gap", "namespace": "default"}})
    sim.compact("pods")
    eventually(lambda: cache_state(inf) == sim.state("pods"))
    relists = lists(inf)[3:]
    assert relists and relists[0].params.get("resourceVersion") not in (None, "0")
    # The store is written before the batch's notifications reach the handlers.
    eventually(lambda: len(rec.of("delete")) >= 2)
    deletes = rec.of("delete")
    assert {d.key for d in deletes} == {keys[0], keys[1]}
    assert all(isinstance(d, kfast.DeletedFinalStateUnknown) and d.obj is not None for d in deletes)
    assert ("during-gap" in [k.split("/")[-1] for k, _rv, _i in rec.of("add")])


def test_handler_exceptions_do_not_kill_the_informer(sim: Simulator, informer: Any,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    inf, rec = informer

    def boom(*_: Any) -> None:
        raise RuntimeError("handler bug")

    reg = inf.add_event_handler(on_add=boom, on_update=boom)
    eventually(reg.has_synced)  # its replay (300 failing adds) is done
    sim.update("pods", sim.keys()[0])
    sim.update("pods", sim.keys()[1])
    eventually(lambda: len(rec.of("update")) == 2)
    assert "handler bug" in caplog.text


def test_late_handler_gets_cache_replayed_as_adds(sim: Simulator, informer: Any) -> None:
    inf, _ = informer
    late: list[str] = []
    reg = inf.add_event_handler(on_add=lambda o: late.append(o.key))
    eventually(lambda: len(late) == 300)
    assert reg.has_synced()
    reg.remove()
    sim.create("pods", {"metadata": {"name": "after-remove", "namespace": "default"}})
    eventually(lambda: "default/after-remove" in inf.indexer)
    time.sleep(0.1)
    assert len(late) == 300


def test_lister(sim: Simulator, informer: Any) -> None:
    inf, _ = informer
    lister = inf.lister
    key = sim.keys()[0]
    ns, name = key.split("/")
    obj = lister.get(name, ns)
    assert obj is not None and obj.key == key and obj["metadata"]["name"] == name
    assert lister.get("missing", ns) is None
    in_ns = lister.list(namespace=ns)
    assert {o.namespace for o in in_ns} == {ns} and len(in_ns) == sum(k.startswith(ns + "/") for k in sim.keys())
    app = obj.labels["app"]
    by_app = lister.by_index("app", app)
    assert by_app and all(o.labels["app"] == app for o in by_app)
    assert {o.key for o in lister.list(label_selector=f"app={app}")} == {o.key for o in by_app}
    sel = f"app!={app},tier in (api,web),team"
    got = {o.key for o in lister.list(label_selector=sel)}
    want = {o.key for o in inf.indexer.list()
            if o.labels.get("app") != app and o.labels.get("tier") in ("api", "web") and "team" in o.labels}
    assert got == want and got
    owner = obj["metadata"]["ownerReferences"][0]["uid"]
    assert key in {o.key for o in lister.by_index("owner", owner)}
    with pytest.raises(KeyError):
        lister.by_index("nope", "x")


def test_stop_is_prompt_and_idempotent(sim: Simulator) -> None:
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods").start()
    assert inf.wait_for_sync(10)
    t0 = time.monotonic()
    inf.stop()
    assert time.monotonic() - t0 < 2
    assert not any(t.is_alive() for t in inf._threads)
    inf.stop()


def test_namespaced_informer_with_selector(sim: Simulator) -> None:
    ns = sim.keys()[0].split("/")[0]
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods", namespace=ns,
                                    label_selector="tier=api", watch_list=False)
    with inf:
        assert inf.wait_for_sync(10)
        want = {k for k, o in ((o.key, o) for o in inf.indexer.list())}
        assert want and all(k.startswith(ns + "/") for k in want)
        assert all(o.labels.get("tier") == "api" for o in inf.indexer.list())
        assert lists(inf)[0].params["labelSelector"] == "tier=api"


def test_resync_delivers_updates_for_cached_objects(sim: Simulator) -> None:
    inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods", resync_period=0.2)
    seen: list[tuple[str, str]] = []
    inf.add_event_handler(on_update=lambda old, new: seen.append((old.resource_version, new.resource_version)))
    with inf:
        assert inf.wait_for_sync(10)
        eventually(lambda: len(seen) >= 300)
        assert all(a == b for a, b in seen[:300])


def test_churn_with_field_index_ends_equal_to_server() -> None:
    # Regression: under concurrent feed + process_batch, deletes were once lost with a
    # (slower) field index; the cache must end equal to the server.
    with Simulator(pods=2000, seed=5, bookmark_interval=3600) as s:
        churn = s.prepare_churn("pods", 6000, updates=0.6, deletes=0.25)
        inf = kfast.SharedIndexInformer(kfast.Config.for_url(s.url), "pods",
                                        indexers={"node": index.by_field("spec.nodeName")})
        deletes: list[str] = []
        inf.add_event_handler(on_delete=lambda o: deletes.append(o.key))
        with inf:
            assert inf.wait_for_sync(10)
            s.release_churn(churn)
            eventually(lambda: cache_state(inf) == s.state("pods"), timeout=30)
            inf.indexer.check_invariants()
            nodes = {o["spec"]["nodeName"] for o in inf.lister.list() if "nodeName" in o["spec"]}
            for n in list(nodes)[:5]:
                want = {o.key for o in inf.indexer.list() if json.loads(bytes(o))["spec"].get("nodeName") == n}
                assert {o.key for o in inf.lister.by_index("node", n)} == want
        assert deletes and len(deletes) == len(set(deletes))


def test_start_after_stop_is_a_runtime_error() -> None:
    with Simulator(pods=3, seed=1) as sim:
        inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods")
        assert inf.start() is inf and inf.start() is inf  # a second start while running: no-op
        assert inf.wait_for_sync(10) and len(inf.indexer) == 3
        inf.stop()
        with pytest.raises(RuntimeError, match="was stopped and cannot be started again"):
            inf.start()
        never_started = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods")
        never_started.stop()
        with pytest.raises(RuntimeError, match="/api/v1/pods"):
            never_started.start()


@pytest.mark.parametrize(("resource", "kw", "message"), [
    ("Pods", {}, "lowercase plurals: 'pods'"),
    ("deployments.apps", {}, "group=/version= or a GroupVersionResource"),
    ("apps/v1/deployments", {}, "group=/version="),
    ("", {}, "is not a resource name"),
    ("pods ", {}, "is not a resource name"),
    ("pods", {"group": "Apps"}, "is not an API group"),
    ("pods", {"version": "V1"}, "is not an API version"),
    (kfast.GroupVersionResource("apps", "v1", "Deployments"), {}, "'deployments'?"),
    (kfast.GroupVersionResource("apps", "v1", "deployments"), {"group": "batch"}, "already names its group"),
])
def test_resource_name_is_validated(resource: Any, kw: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("?", r"\?")):
        kfast.SharedIndexInformer(kfast.Config.for_url("http://127.0.0.1:9"), resource, **kw)


def test_group_version_resource_and_valid_names_build_the_path() -> None:
    cfg = kfast.Config.for_url("http://127.0.0.1:9")
    gvr = kfast.GroupVersionResource("apps", "v1", "deployments")
    inf = kfast.SharedIndexInformer(cfg, gvr, namespace="ns1")
    assert (inf.path, inf.resource) == ("/apis/apps/v1/namespaces/ns1/deployments", "deployments")
    crd = kfast.SharedIndexInformer(cfg, "my-widgets2", group="stable.example.com", version="v1beta1")
    assert crd.path == "/apis/stable.example.com/v1beta1/my-widgets2"
    with pytest.raises(TypeError):
        kfast.SharedIndexInformer(cfg, ("apps", "v1"))  # type: ignore[arg-type]
