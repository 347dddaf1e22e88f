"""The watch stream's Python path (kfast._feed): the streaming list's initial phase, with and
without a transform, fed byte chunks directly (no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kfast import _native, errors
from kfast._feed import _Feed
from kfast._metrics import Counters


def obj(name: str, rv: str, uid: str = "") -> dict[str, Any]:
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "ns", "uid": uid or f"u-{name}", "resourceVersion": rv}}


def line(kind: str, o: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": o}).encode() + b"\n"


def bookmark(rv: str, end: bool = True) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": rv}
    if end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return line("BOOKMARK", {"kind": "Pod", "apiVersion": "v1", "metadata": meta})


def upper_name(o: _native.StoredObject) -> _native.StoredObject:
    d = json.loads(bytes(o))
    d["metadata"]["labels"] = {"seen": "yes"}
    return _native.StoredObject(json.dumps(d).encode())


@pytest.mark.parametrize("transform", [None, upper_name], ids=["rust", "python"])
def test_initial_phase_then_steady_state(transform: Any) -> None:
    fifo = _native.DeltaFIFO(known_objects=_native.Indexer())
    got: list[tuple[list[str], str]] = []
    opened: list[bool] = []
    c = Counters()

    def initial_end(items: list[_native.StoredObject], rv: str) -> None:
        got.append((sorted(f"{o.key}@{o.resource_version}" for o in items), rv))
        fifo.replace(items, rv)  # what the driver does

    feed = _Feed(fifo, lambda: opened.append(True), initial_end, c, transform)
    d = _native.WatchDecoder(http=False)
    first = (line("ADDED", obj("a", "5")) + line("ADDED", obj("b", "6")) + bookmark("7", end=False)
             + line("ADDED", obj("c", "4")))
    assert feed(d, first) is None and got == [] and len(fifo) == 0
    # The bookmark shares its read with a later change and a later create.
    second = bookmark("10") + line("MODIFIED", obj("a", "11")) + line("ADDED", obj("d", "12"))
    rv = feed(d, second)
    assert opened == [True] and len(got) == 1
    items, at = got[0]
    a = [(x.type, x.object.resource_version) for x in fifo.get_by_key("ns/a") or []]  # type: ignore[union-attr]
    if transform is None:
        # Folded: the initial set is the state as of the last event of that read.
        assert items == ["ns/a@11", "ns/b@6", "ns/c@4", "ns/d@12"] and at == "12"
        assert a == [("Replaced", "11")] and rv is None and c.initial_events == 5
    else:
        assert items == ["ns/a@5", "ns/b@6", "ns/c@4"] and at == "10"
        assert a == [("Replaced", "5"), ("Updated", "11")] and rv == "12" and c.events == 2
        assert all(x.object.labels == {"seen": "yes"} for x in fifo.get_by_key("ns/d") or [])  # type: ignore[union-attr]
    assert sorted(fifo.list_keys()) == ["ns/a", "ns/b", "ns/c", "ns/d"]
    assert feed(d, line("DELETED", obj("b", "13"))) == "13"
    assert [x.type for x in fifo.get_by_key("ns/b") or []] == ["Replaced", "Deleted"]
    assert c.bookmarks == 2


def test_error_event_in_initial_phase_raises_and_counts() -> None:
    fifo = _native.DeltaFIFO(known_objects=_native.Indexer())
    c = Counters()
    feed = _Feed(fifo, lambda: None, lambda items, rv: None, c, None)
    d = _native.WatchDecoder(http=False)
    status = {"kind": "Status", "apiVersion": "v1", "code": 410, "reason": "Expired", "message": "too old"}
    with pytest.raises(errors.Gone):
        feed(d, line("ADDED", obj("a", "5")) + line("ERROR", status))
    assert c.error_events == 1 and len(fifo) == 0
