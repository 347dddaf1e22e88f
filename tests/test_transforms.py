"""Transforms before caching: native ones (fields cut from the JSON bytes in Rust) and the
Python slow path, on every sync path (streaming list, LIST + WATCH) and through the
factory, handlers, lister and indices."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kfast
from kfast import _native, transforms
from kfast.simulator import Simulator

LAST_APPLIED_KEY = transforms.LAST_APPLIED[-1]


def eventually(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def pod(**meta: Any) -> dict[str, Any]:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {
        "name": "a", "namespace": "n", "uid": "u", "resourceVersion": "1",
        "labels": {"app": "web"},
        "annotations": {LAST_APPLIED_KEY: "{\"kind\":\"Pod\"}\n", "keep": "x"},
        "managedFields": [{"manager": "m", "fieldsV1": {"f:metadata": {"f:name": {}}}}], **meta},
        "spec": {"nodeName": "n1"}, "status": {"phase": "Running", "conditions": [{"type": "Ready"}]}}


def test_builtin_transforms_are_native_and_cut_exactly_their_fields() -> None:
    doc = pod()
    obj = kfast.StoredObject(msgspec.json.encode(doc))
    mf, la = transforms.drop_managed_fields(), transforms.drop_last_applied()
    assert isinstance(mf, transforms.ObjectTransform) and mf.paths == [["metadata", "managedFields"]]
    got = msgspec.json.decode(bytes(mf(obj)))
    assert "managedFields" not in got["metadata"]
    assert got["metadata"]["annotations"] == doc["metadata"]["annotations"]
    both = mf + la
    out = both(obj)
    got = msgspec.json.decode(bytes(out))
    want = msgspec.json.decode(msgspec.json.encode(doc))
    del want["metadata"]["managedFields"]
    del want["metadata"]["annotations"][LAST_APPLIED_KEY]
    assert got == want
    assert (out.key, out.uid, out.resource_version, out.labels) == ("n/a", "u", "1", {"app": "web"})
    assert out.nbytes < obj.nbytes
    # Nothing to cut: the very same object comes back.
    assert both(out) is out
    plain = kfast.StoredObject(b'{"metadata":{"name":"b"}}')
    assert transforms.drop_fields(("spec", "x"), "status")(plain) is plain


def test_drop_fields_takes_dotted_paths_and_key_sequences() -> None:
    obj = kfast.StoredObject(msgspec.json.encode(pod()))
    t = transforms.drop_fields("status.conditions", transforms.LAST_APPLIED)
    assert t.paths == [["status", "conditions"], list(transforms.LAST_APPLIED)]
    got = msgspec.json.decode(bytes(t(obj)))
    assert got["status"] == {"phase": "Running"}
    assert got["metadata"]["annotations"] == {"keep": "x"}
    assert t == transforms.combine(transforms.drop_fields("status.conditions"), transforms.drop_last_applied())


@pytest.mark.parametrize("path", ["metadata", "metadata.name", "metadata.namespace", "metadata.uid",
                                  "metadata.resourceVersion"])
def test_fields_the_cache_runs_on_cannot_be_dropped(path: str) -> None:
    with pytest.raises(ValueError, match="cannot be dropped"):
        transforms.drop_fields(path)
    with pytest.raises(ValueError):
        transforms.drop_fields(())


def test_combine_with_a_python_function_is_the_slow_path_in_order() -> None:
    seen: list[bool] = []

    def spy(o: _native.StoredObject) -> _native.StoredObject:
        seen.append(b"managedFields" in bytes(o))
        return o

    t = transforms.combine(transforms.drop_managed_fields(), spy)
    assert not isinstance(t, transforms.ObjectTransform)
    out = t(kfast.StoredObject(msgspec.json.encode(pod())))
    assert seen == [False] and b"managedFields" not in bytes(out)


_keys = st.sampled_from(["managedFields", "metadata", "labels", "a", "b.c", "status", "x\"y", "é"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | _keys,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(extra=st.dictionaries(_keys, _json, max_size=4), meta_extra=st.dictionaries(_keys, _json, max_size=4),
       labels=st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), st.text(max_size=4), max_size=3),
       paths=st.lists(st.lists(_keys, min_size=1, max_size=3), min_size=1, max_size=3))
def test_native_transform_equals_the_model(extra: dict[str, Any], meta_extra: dict[str, Any],
                                           labels: dict[str, str], paths: list[list[str]]) -> None:
    meta = {**{k: v for k, v in meta_extra.items() if k != "labels"}, "name": "p", "namespace": "ns",
            "uid": "u", "resourceVersion": "3", "labels": labels, "managedFields": [{"manager": "m"}]}
    doc = {**{k: v for k, v in extra.items() if k != "metadata"}, "metadata": meta}
    try:
        t = transforms.drop_fields(*paths) + transforms.drop_managed_fields()
    except ValueError:
        return  # a path reaching the key fields (only "metadata" alone here)
    obj = kfast.StoredObject(msgspec.json.encode(doc))
    out = t(obj)
    want: Any = msgspec.json.decode(msgspec.json.encode(doc))
    for p in [*paths, ["metadata", "managedFields"]]:
        node = want
        for k in p[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(p[-1], None)
    assert msgspec.json.decode(bytes(out)) == want
    # The metadata read from the cut bytes is what a fresh parse of them says.
    fresh = kfast.StoredObject(bytes(out))
    assert (out.key, out.name, out.namespace, out.uid, out.resource_version, out.labels) == (
        fresh.key, fresh.name, fresh.namespace, fresh.uid, fresh.resource_version, fresh.labels)
    assert out.key == "ns/p"


# ---- through the informer ----------------------------------------------------------------

NATIVE = transforms.drop_managed_fields() + transforms.drop_last_applied() + transforms.drop_fields("status.conditions")


def python_transform(obj: _native.StoredObject) -> _native.StoredObject:
    return NATIVE(obj)


@pytest.mark.parametrize("transform", [NATIVE, python_transform], ids=["native", "python"])
@pytest.mark.parametrize("watch_list", [True, False], ids=["streaming", "list"])
def test_informer_caches_transformed_objects_from_list_and_watch(watch_list: bool, transform: Any) -> None:
    with Simulator(pods=60, seed=5, bookmark_interval=3600) as sim:
        inf = kfast.SharedIndexInformer(
            kfast.Config.for_url(sim.url), "pods", watch_list=watch_list, transform=transform,
            indexers={"app": kfast.IndexFunc.label("app"), "node": kfast.IndexFunc.field("spec.nodeName"),
                      "phase": kfast.IndexFunc.field("status.phase")})
        seen: list[bytes] = []
        lock = threading.Lock()

        def on_add(o: kfast.ObjectView) -> None:
            with lock:
                seen.append(bytes(o.stored))

        def on_update(old: kfast.ObjectView, new: kfast.ObjectView) -> None:
            with lock:
                seen.append(bytes(new.stored))

        inf.add_event_handler(on_add=on_add, on_update=on_update)
        with inf:
            assert inf.wait_for_sync(10)
            k = sim.keys()[0]
            sim.update("pods", k)
            sim.create("pods", {"metadata": {"name": "new", "namespace": "default", "labels": {"app": "x"},
                                             "managedFields": [{"manager": "x"}]},
                                "spec": {"nodeName": "node-x"}})
            eventually(lambda: {o.key: o.resource_version for o in inf.indexer.list()} == sim.state("pods"))
            eventually(lambda: len(seen) == 62)
            cached = inf.indexer.list()
            for o in cached:
                body = bytes(o)
                assert b"managedFields" not in body and b"last-applied-configuration" not in body
                doc = msgspec.json.decode(body)
                assert "conditions" not in doc.get("status", {})
                # Metadata positions point at the right bytes after the cut.
                m = doc["metadata"]
                assert (o.name, o.namespace, o.uid, o.resource_version) == (
                    m["name"], m["namespace"], m["uid"], m["resourceVersion"])
                assert o.labels == m.get("labels", {}) and o.key == f"{m['namespace']}/{m['name']}"
                assert [r["uid"] for r in o.owner_references] == [r["uid"] for r in m.get("ownerReferences", [])]
            with lock:
                assert all(b"managedFields" not in b for b in seen)
            # Indices computed from the cut objects agree with their JSON.
            for o in cached:
                doc = msgspec.json.decode(bytes(o))
                app = doc["metadata"].get("labels", {}).get("app")
                if app is not None:
                    assert o.key in {x.key for x in inf.indexer.by_index("app", app)}
                node = doc.get("spec", {}).get("nodeName")
                if node is not None:
                    assert o.key in inf.indexer.index_keys("node", node)
            assert sorted(inf.indexer.list_index_values("phase")) == ["Running"]
            assert inf.indexer.index_keys("node", "node-x") == ["default/new"]
            # The lister's views are the cut objects too.
            view = inf.lister.get("new", "default")
            assert view is not None and "managedFields" not in view["metadata"]
            assert view["spec"]["nodeName"] == "node-x" and view.labels == {"app": "x"}
            some = inf.lister.list(namespace="payments")
            assert some and all("managedFields" not in v["metadata"] for v in some)
            inf.indexer.check_invariants()
            m = inf.metrics()
            assert m.events == 2 and m.streaming_list is (True if watch_list else None)
            assert m.events_by_type["ADDED"] == (61 if watch_list else 1)
            assert m.events_by_type["MODIFIED"] == 1 and m.events_by_type["DELETED"] == 0


def test_native_transform_keeps_the_watch_on_the_rust_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from kfast import _driver

    calls: list[Any] = []
    real = _driver.run_python_path

    def spy(*a: Any, **kw: Any) -> None:
        calls.append(a[-1] if len(a) > 6 else kw.get("transform"))
        real(*a, **kw)

    monkeypatch.setattr(_driver, "run_python_path", spy)
    with Simulator(pods=10, seed=2, bookmark_interval=3600) as sim:
        with kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods", watch_list=False,
                                       transform=transforms.drop_managed_fields()) as inf:
            assert inf.wait_for_sync(10)
            sim.update("pods", sim.keys()[0])
            eventually(lambda: inf.metrics().events == 1)
            assert all(b"managedFields" not in bytes(o) for o in inf.indexer.list())
    assert calls == []  # LIST + WATCH with a native transform never took the Python path


def test_factory_transform_applies_to_its_informers() -> None:
    with Simulator(pods=20, seed=3, bookmark_interval=3600) as sim:
        factory = kfast.SharedInformerFactory(kfast.Config.for_url(sim.url),
                                              transform=transforms.drop_managed_fields())
        pods = factory.for_resource("pods")
        mine = factory.for_resource("pods", namespace="payments", transform=transforms.drop_last_applied())
        factory.start()
        try:
            assert pods.wait_for_sync(10) and mine.wait_for_sync(10)
            assert len(pods.indexer) == 20
            assert all(b"managedFields" not in bytes(o) for o in pods.indexer.list())
            assert all(b"managedFields" in bytes(o) and b"last-applied" not in bytes(o)
                       for o in mine.indexer.list())
        finally:
            factory.shutdown()


def test_list_pages_are_parsed_in_rust_with_the_transform_and_captures() -> None:
    items = [pod(name=f"p{i}", labels={"i": str(i)}) for i in range(3)]
    body = msgspec.json.encode({"kind": "PodList", "metadata": {"resourceVersion": "9", "continue": "c1"},
                                "items": items})
    idx = _native.Indexer({"node": _native.IndexFunc.field("spec.nodeName")})
    fifo = _native.DeltaFIFO(known_objects=idx)
    got, rv, token = _native.decode_list(body, capture_for=fifo, transform=NATIVE)
    assert (rv, token) == ("9", "c1")
    want = [NATIVE(kfast.StoredObject(msgspec.json.encode(it))) for it in items]
    assert [bytes(o) for o in got] == [bytes(o) for o in want]
    assert [(o.key, o.labels) for o in got] == [(f"n/p{i}", {"i": str(i)}) for i in range(3)]
    assert [_native.IndexFunc.field("spec.nodeName").values(o) for o in got] == [["n1"]] * 3
    plain, rv, token = _native.decode_list(msgspec.json.encode({"metadata": {"continue": ""}, "items": items}))
    assert token is None and rv == "" and b"managedFields" in bytes(plain[0])
    with pytest.raises(kfast.errors.DecodeError, match="without metadata.name"):
        _native.decode_list(b'{"items":[{"metadata":{"namespace":"x"}}]}')
