"""Stateful property test: Indexer against IndexerModel, with built-in (namespace, label,
field) and Python callable index functions, and add_indexers after data exists."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from store_model import IndexerModel, make

from kfast._native import DeletedFinalStateUnknown, IndexFunc, Indexer, StoredObject

if TYPE_CHECKING:
    from kfast._native import IndexFuncLike

NAMES = ["a", "b", "c"]
NAMESPACES = ["", "n1", "n2"]
TAGS = ["t1", "t2", "t3"]

descs = st.fixed_dictionaries(
    {
        "name": st.sampled_from(NAMES),
        "ns": st.sampled_from(NAMESPACES),
        "app": st.sampled_from([None, "x", "y"]),
        "tags": st.lists(st.sampled_from(TAGS), max_size=3),
        "node": st.sampled_from([None, "n1", "n2", ["n1", "n2"], []]),
    }
)


def key_of(d: dict[str, Any]) -> str:
    return f"{d['ns']}/{d['name']}" if d["ns"] else d["name"]


def build(d: dict[str, Any]) -> StoredObject:
    labels = {}
    if d["app"] is not None:
        labels["app"] = d["app"]
    if d["tags"]:
        labels["tags"] = ",".join(d["tags"])
    return make(d["name"], ns=d["ns"], labels=labels, node=d["node"])


def py_tags(o: StoredObject) -> list[str]:
    """The slow path: a Python callable index (multi-valued, may repeat values)."""
    v = o.labels.get("tags", "")
    return v.split(",") if v else []


def py_node_or_none(o: StoredObject) -> tuple[str, ...]:
    return (o.name.upper(),)


MODEL_FNS = {
    "ns": lambda d: [d["ns"]] if d["ns"] else [],
    "app": lambda d: [d["app"]] if d["app"] is not None else [],
    "node": lambda d: [] if d["node"] is None else ([d["node"]] if isinstance(d["node"], str) else d["node"]),
    "tags": lambda d: d["tags"],
    "upper": lambda d: [d["name"].upper()],
}
REAL_FNS: dict[str, IndexFuncLike] = {
    "ns": IndexFunc.namespace(),
    "app": IndexFunc.label("app"),
    "node": IndexFunc.field("spec.nodeName"),
    "tags": py_tags,
    "upper": py_node_or_none,
}
INITIAL = ["ns", "app", "tags"]


class IndexerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ix = Indexer({n: REAL_FNS[n] for n in INITIAL})
        self.model = IndexerModel({n: MODEL_FNS[n] for n in INITIAL})

    @rule(d=descs)
    def add(self, d: dict[str, Any]) -> None:
        d = {**d, "key": key_of(d)}
        self.ix.add(build(d))
        self.model.add(d)

    @rule(d=descs)
    def update(self, d: dict[str, Any]) -> None:
        d = {**d, "key": key_of(d)}
        self.ix.update(build(d))
        self.model.add(d)

    @rule(d=descs, tombstone=st.booleans())
    def delete(self, d: dict[str, Any], tombstone: bool) -> None:
        key = key_of(d)
        obj = build(d)
        self.ix.delete(DeletedFinalStateUnknown(key, None) if tombstone else obj)
        self.model.delete(key)

    @rule(ds=st.lists(descs, max_size=5))
    def replace(self, ds: list[dict[str, Any]]) -> None:
        ds = [{**d, "key": key_of(d)} for d in ds]
        self.ix.replace([build(d) for d in ds], "7")
        self.model.replace(ds)

    @rule(name=st.sampled_from(sorted(MODEL_FNS)))
    def add_indexer(self, name: str) -> None:
        if name in self.model.indexers:
            with pytest.raises(ValueError):
                self.ix.add_indexers({name: REAL_FNS[name]})
            with pytest.raises(ValueError):
                self.model.add_indexers({name: MODEL_FNS[name]})
        else:
            self.ix.add_indexers({name: REAL_FNS[name]})
            self.model.add_indexers({name: MODEL_FNS[name]})

    @rule(d=descs)
    def index_query(self, d: dict[str, Any]) -> None:
        d = {**d, "key": key_of(d)}
        probe = build(d)
        for name in self.model.indexers:
            assert {o.key for o in self.ix.index(name, probe)} == self.model.index_of(name, d)

    @invariant()
    def matches_model(self) -> None:
        self.ix.check_invariants()
        assert sorted(self.ix.list_keys()) == sorted(self.model.items)
        assert len(self.ix) == len(self.model.items)
        assert sorted(o.key for o in self.ix.list()) == sorted(self.model.items)
        for key, d in self.model.items.items():
            got = self.ix.get_by_key(key)
            assert got is not None and got.key == key and key in self.ix
            assert got.labels.get("app") == d["app"]
            assert sorted(py_tags(got)) == sorted(d["tags"])
        for name in self.model.indexers:
            m = self.model.index_map(name)
            assert sorted(self.ix.list_index_values(name)) == sorted(m)
            for value, keys in m.items():
                assert sorted(self.ix.index_keys(name, value)) == sorted(keys)
                assert sorted(o.key for o in self.ix.by_index(name, value)) == sorted(keys)
            assert self.ix.index_keys(name, "no-such-value") == []
        for name in set(MODEL_FNS) - set(self.model.indexers):
            with pytest.raises(KeyError):
                self.ix.by_index(name, "x")
            assert self.ix.list_index_values(name) == []


IndexerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestIndexer = IndexerMachine.TestCase
