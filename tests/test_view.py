"""Lazy read-only views, label selectors, built-in index helpers, the public surface."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from typing import Any

import msgspec
import pytest

import kfast
from kfast import _native, index
from kfast._selector import parse_selector
from kfast._view import ObjectView, ReadOnlyList, ReadOnlyMapping

POD = {
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {"name": "p1", "namespace": "ns1", "uid": "u1", "resourceVersion": "42",
                 "labels": {"app": "web", "tier": "front"}, "annotations": {"team": "blue"},
                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs1",
                                      "uid": "ou1", "controller": True}]},
    "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
}


def stored(doc: dict = POD) -> _native.StoredObject:
    return _native.StoredObject(json.dumps(doc).encode())


def test_metadata_without_decoding() -> None:
    v = ObjectView(stored())
    assert (v.key, v.name, v.namespace, v.uid, v.resource_version) == ("ns1/p1", "p1", "ns1", "u1", "42")
    assert v.labels == {"app": "web", "tier": "front"}
    assert v._data is None  # nothing decoded yet
    assert "ns1/p1" in repr(v)
    assert v._data is None


def test_decodes_once_and_reads_like_a_mapping() -> None:
    v = ObjectView(stored())
    assert isinstance(v, Mapping)
    assert v["spec"]["nodeName"] == "n1"
    first = v._data
    assert v["metadata"]["name"] == "p1" and v._data is first
    assert set(v) == set(POD) and len(v) == len(POD) and "spec" in v
    assert v.get("status") is None
    assert v.to_dict() == POD and v == POD


def test_nested_values_are_read_only() -> None:
    v = ObjectView(stored())
    spec = v["spec"]
    assert isinstance(spec, ReadOnlyMapping)
    containers = spec["containers"]
    assert isinstance(containers, ReadOnlyList) and isinstance(containers, Sequence)
    assert containers[0]["ports"][0]["containerPort"] == 80
    assert containers == [{"name": "c", "ports": [{"containerPort": 80}]}]
    assert len(containers[0:1]) == 1
    with pytest.raises(TypeError):
        spec["nodeName"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        containers[0] = 1  # type: ignore[index]
    d = spec.to_dict()
    d["nodeName"] = "changed"
    assert v["spec"]["nodeName"] == "n1"
    mine = v.to_dict()
    mine["spec"]["nodeName"] = "mutated"
    assert v["spec"]["nodeName"] == "n1"


def test_view_has_slots_and_equality() -> None:
    v = ObjectView(stored())
    with pytest.raises(AttributeError):
        v.extra = 1  # type: ignore[attr-defined]
    assert v == ObjectView(stored())
    other = dict(POD, spec={})
    assert v != ObjectView(stored(other))
    with pytest.raises(TypeError):
        hash(v)


def test_zero_copy_decode_source() -> None:
    so = stored()
    assert msgspec.json.decode(so) == POD
    assert bytes(memoryview(so)) == so.raw()


@pytest.mark.parametrize(("sel", "labels", "ok"), [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "web"}, True),
    ("app=web", {"app": "db"}, False),
    ("app!=web", {"app": "db"}, True),
    ("app!=web", {}, True),
    ("app in (web,db)", {"app": "db"}, True),
    ("app in (web, db)", {"app": "x"}, False),
    ("app notin (web,db)", {"app": "x"}, True),
    ("app notin (web,db)", {}, True),
    ("app", {"app": ""}, True),
    ("app", {}, False),
    ("!app", {}, True),
    ("!app", {"app": "x"}, False),
    ("a=b,c!=d,e in (x,y),f", {"a": "b", "c": "z", "e": "y", "f": "1"}, True),
    ("a=b,c!=d,e in (x,y),f", {"a": "b", "c": "d", "e": "y", "f": "1"}, False),
    ("a=b,c!=d,e in (x,y),f", {"a": "b", "e": "y"}, False),
    ("example.com/role=db, tier = front", {"example.com/role": "db", "tier": "front"}, True),
    ("a=", {"a": ""}, True),
    ("", {"anything": "x"}, True),
])
def test_selector_matching(sel: str, labels: dict[str, str], ok: bool) -> None:
    assert parse_selector(sel).matches(labels) is ok


@pytest.mark.parametrize("bad", ["a=b,", "a in x", "a in (x", "=b", "a b", "a in ()", "a=(b)", ",a"])
def test_selector_rejects_bad_input(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_selector(bad)


def test_selector_from_mapping() -> None:
    assert parse_selector({"app": "web"}).matches({"app": "web", "x": "y"})
    assert not parse_selector({"app": "web"}).matches({})


def test_index_helpers_are_native() -> None:
    so = stored()
    cases = {
        index.by_namespace(): ["ns1"],
        index.by_label("app"): ["web"],
        index.by_annotation("team"): ["blue"],
        index.by_field("spec.nodeName"): ["n1"],
        index.by_owner_uid(): ["ou1"],
        index.by_owner_kind(): ["ReplicaSet/rs1"],
    }
    for fn, want in cases.items():
        assert isinstance(fn, _native.IndexFunc)
        assert fn.values(so) == want
    assert index.by_label("missing").values(so) == []
    assert index.IndexFunc is _native.IndexFunc


def test_public_surface() -> None:
    for name in kfast.__all__:
        assert getattr(kfast, name) is not None, name
    assert kfast.Indexer is _native.Indexer and kfast.DeltaFIFO is _native.DeltaFIFO
    assert kfast.SharedIndexInformer.__module__ == "kfast.informer"
    assert "SharedIndexInformer" in dir(kfast)
    with pytest.raises(AttributeError):
        kfast.nope  # noqa: B018


# obj["metadata"] is decoded on its own (the usual handler access), with managedFields
# left raw until read; the result must equal a full decode in every case.

_META_CASES = [
    {"kind": "Pod", "metadata": {"name": "a", "namespace": "n", "labels": {"x": "1"},
                                 "managedFields": [{"manager": "m", "fieldsV1": {"f:x": {}}}]},
     "spec": {"a": 1}},
    {"metadata": {"name": "b", "futureField": 3}},          # unknown field: full decode
    {"metadata": {"name": "c", "deletionTimestamp": None}},  # explicit null kept
    {"metadata": {"name": "d", "managedFields": None}},
    {"metadata": None},
    {"kind": "X"},
]


@pytest.mark.parametrize("obj", _META_CASES)
def test_metadata_access_equals_full_decode(obj: dict[str, Any]) -> None:
    v = ObjectView(_native.StoredObject(json.dumps(obj).encode()))
    if "metadata" not in obj:
        with pytest.raises(KeyError):
            v["metadata"]
        return
    m = v["metadata"]
    want = obj["metadata"]
    if want is None:
        assert m is None
        return
    assert dict(m.items()) == want
    assert sorted(m) == sorted(want)
    assert len(m) == len(want)
    assert m.to_dict() == want
    if "managedFields" in want:
        assert m["managedFields"] == want["managedFields"]
    # A later full decode agrees with what metadata-only access returned.
    assert v == obj
