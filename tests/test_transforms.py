"""Python transforms before caching (the slow path), on both sync paths."""

from __future__ import annotations

import time

import msgspec
import pytest

import kfast
from kfast import transforms
from kfast.simulator import Simulator


def test_drop_fields_removes_paths_and_keeps_untouched_objects() -> None:
    doc = {"kind": "Pod", "apiVersion": "v1", "metadata": {
        "name": "a", "namespace": "n", "uid": "u", "resourceVersion": "1",
        "annotations": {transforms.LAST_APPLIED[-1]: "{}", "keep": "x"},
        "managedFields": [{"manager": "m"}]}, "spec": {"a": 1}}
    obj = kfast.StoredObject(msgspec.json.encode(doc))
    out = transforms.drop_managed_fields()(obj)
    got = msgspec.json.decode(bytes(out))
    assert "managedFields" not in got["metadata"]
    assert got["metadata"]["annotations"] == {"keep": "x"} and got["spec"] == {"a": 1}
    assert out.key == "n/a" and out.uid == "u" and out.nbytes < obj.nbytes
    plain = kfast.StoredObject(b'{"metadata":{"name":"b"}}')
    assert transforms.drop_fields(("spec", "x"), ("status",))(plain) is plain


@pytest.mark.parametrize("watch_list", [True, False])
def test_informer_caches_transformed_objects_from_list_and_watch(watch_list: bool) -> None:
    with Simulator(pods=40, seed=5, bookmark_interval=3600) as sim:
        inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods", watch_list=watch_list,
                                        transform=transforms.drop_managed_fields())
        with inf:
            assert inf.wait_for_sync(10)
            k = sim.keys()[0]
            sim.update("pods", k)
            sim.create("pods", {"metadata": {"name": "new", "namespace": "default",
                                             "managedFields": [{"manager": "x"}]}})
            end = time.monotonic() + 10
            while {o.key: o.resource_version for o in inf.indexer.list()} != sim.state("pods"):
                assert time.monotonic() < end
                time.sleep(0.01)
            for o in inf.indexer.list():
                body = bytes(o)
                assert b"managedFields" not in body and b"last-applied-configuration" not in body
            m = inf.metrics()
            assert m.events == 2 and m.streaming_list is (True if watch_list else None)
