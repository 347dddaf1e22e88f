"""Example tests for the tricky cases of DeltaFIFO, Indexer and process_batch."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest
from store_model import make, rep

from kfast._native import (
    DeletedFinalStateUnknown,
    DeltaFIFO,
    IndexFunc,
    Indexer,
    StoredObject,
    process_batch,
)


def deltas(fifo: DeltaFIFO, key: str) -> list[tuple[str, object]]:
    got = fifo.get_by_key(key)
    assert got is not None
    return [(d.type, rep(d.object)) for d in got]


def test_consecutive_deletes_collapse_keeping_the_non_tombstone() -> None:
    fifo = DeltaFIFO()
    a = make("a", uid="u1", rv="5")
    fifo.add(a)
    fifo.delete(DeletedFinalStateUnknown("ns/a", None))
    fifo.delete(a)
    assert deltas(fifo, "ns/a") == [("Added", rep(a)), ("Deleted", rep(a))]
    fifo.delete(DeletedFinalStateUnknown("ns/a", None))
    assert deltas(fifo, "ns/a") == [("Added", rep(a)), ("Deleted", rep(a))]
    fifo.check_invariants()


def test_delete_of_unknown_key_is_ignored() -> None:
    ix = Indexer()
    fifo = DeltaFIFO(ix)
    fifo.delete(make("ghost"))
    assert len(fifo) == 0
    ix.add(make("known"))
    fifo.delete(make("known"))
    assert fifo.list_keys() == ["ns/known"]


def test_replace_tombstones_known_and_queued_only_keys() -> None:
    ix = Indexer()
    known = make("known", uid="k1", rv="3")
    ix.add(known)
    fifo = DeltaFIFO(ix)
    q1, q2 = make("queued", uid="q", rv="4"), make("queued", uid="q", rv="6")
    fifo.add(q1)
    fifo.update(q2)
    listed = make("listed", uid="l", rv="7")
    fifo.replace([listed], "7")
    assert fifo.list_keys() == ["ns/queued", "ns/listed", "ns/known"]
    # Queued but never known: the tombstone carries the newest queued state.
    assert deltas(fifo, "ns/queued") == [
        ("Added", rep(q1)),
        ("Updated", rep(q2)),
        ("Deleted", ("tomb", "ns/queued", rep(q2))),
    ]
    assert deltas(fifo, "ns/known") == [("Deleted", ("tomb", "ns/known", rep(known)))]
    assert deltas(fifo, "ns/listed") == [("Replaced", rep(listed))]
    out = process_batch(fifo, ix, timeout=0)
    assert isinstance(out, list)
    assert [(k, rep(o)) for k, o, _, _ in out] == [
        (0, rep(q1)),
        (1, rep(q2)),
        (2, ("tomb", "ns/queued", rep(q2))),
        (0, rep(listed)),
        (2, ("tomb", "ns/known", rep(known))),
    ]
    assert ix.list_keys() == ["ns/listed"]


def test_recreate_during_relist_gap_deletes_old_before_adding_new() -> None:
    ix = Indexer()
    fifo = DeltaFIFO(ix)
    old = make("a", uid="old", rv="1")
    fifo.replace([old], "1")
    first = process_batch(fifo, ix, timeout=0)
    assert isinstance(first, list)
    assert [(k, rep(o), p, init) for k, o, p, init in first] == [(0, rep(old), None, True)]
    assert fifo.has_synced()
    new = make("a", uid="new", rv="9")
    fifo.replace([new], "9")
    out = process_batch(fifo, ix, timeout=0)
    assert isinstance(out, list)
    assert [(k, rep(o), rep(p), init) for k, o, p, init in out] == [
        (2, ("tomb", "ns/a", rep(old)), None, False),
        (0, rep(new), None, False),
    ]
    got = ix.get_by_key("ns/a")
    assert got is not None and got.uid == "new"


def test_recreate_through_watch_events_is_delete_then_add() -> None:
    ix = Indexer()
    fifo = DeltaFIFO(ix)
    old = make("a", uid="old", rv="1")
    fifo.add(old)
    assert process_batch(fifo, ix, timeout=0, collect=False) == 1
    # The processor falls behind: delete and re-create queue under one key, in order.
    fifo.delete(old)
    new = make("a", uid="new", rv="3")
    fifo.add(new)
    out = process_batch(fifo, ix, timeout=0)
    assert isinstance(out, list)
    assert [(k, rep(o)) for k, o, _, _ in out] == [(2, rep(old)), (0, rep(new))]
    got = ix.get_by_key("ns/a")
    assert got is not None and got.uid == "new"


def test_update_from_a_to_ab_keeps_a() -> None:
    calls: list[str] = []

    def tags(o: StoredObject) -> list[str]:
        calls.append(o.key)
        v = o.labels.get("tags", "")
        return v.split(",") if v else []

    ix = Indexer({"tags": tags, "node": IndexFunc.field("spec.nodeName")})
    ix.add(make("p", labels={"tags": "a"}, node=["a"]))
    ix.update(make("p", labels={"tags": "a,b"}, node=["a", "b"]))
    for name in ("tags", "node"):
        assert ix.index_keys(name, "a") == ["ns/p"]
        assert ix.index_keys(name, "b") == ["ns/p"]
        assert sorted(ix.list_index_values(name)) == ["a", "b"]
    ix.update(make("p", labels={"tags": "b"}, node="b"))
    assert ix.list_index_values("tags") == ["b"]
    assert ix.list_index_values("node") == ["b"]
    ix.delete(make("p"))
    assert ix.list_index_values("tags") == []
    assert calls == ["ns/p", "ns/p", "ns/p"]  # once per stored version, none for delete
    ix.check_invariants()


def test_add_indexers_after_data_indexes_existing_objects() -> None:
    ix = Indexer({"ns": IndexFunc.namespace()})
    ix.add(make("a", ns="n1", labels={"app": "web"}))
    ix.add(make("b", ns="n2", labels={"app": "web"}))
    ix.add(make("node1", ns=""))
    assert sorted(ix.list_index_values("ns")) == ["n1", "n2"]
    ix.add_indexers({"app": IndexFunc.label("app"), "first": lambda o: [o.name[0]]})
    assert sorted(ix.index_keys("app", "web")) == ["n1/a", "n2/b"]
    assert ix.index_keys("first", "n") == ["node1"]
    assert sorted(o.key for o in ix.index("app", make("zz", labels={"app": "web"}))) == ["n1/a", "n2/b"]
    with pytest.raises(ValueError):
        ix.add_indexers({"app": IndexFunc.namespace()})
    with pytest.raises(KeyError):
        ix.by_index("missing", "x")
    with pytest.raises(KeyError):
        ix.index_keys("missing", "x")
    ix.check_invariants()


def test_builtin_index_functions() -> None:
    o = make(
        "p",
        ns="n",
        labels={"app": "web"},
        node="n7",
        owners=[("ReplicaSet", "rs", "r1"), ("Job", "j", "j1")],
    )
    assert IndexFunc.namespace().values(o) == ["n"]
    assert IndexFunc.namespace().values(make("c", ns="")) == []
    assert IndexFunc.label("app").values(o) == ["web"]
    assert IndexFunc.label("nope").values(o) == []
    assert IndexFunc.annotation("nope").values(o) == []
    assert IndexFunc.field("spec.nodeName").values(o) == ["n7"]
    assert IndexFunc.owner_uid().values(o) == ["r1", "j1"]
    assert IndexFunc.owner_kind().values(o) == ["ReplicaSet/rs", "Job/j"]


def test_raising_index_function_surfaces_as_its_exception() -> None:
    def bad(o: StoredObject) -> list[str]:
        if o.name == "boom":
            raise ZeroDivisionError("nope")
        return [o.name]

    ix = Indexer({"bad": bad})
    with pytest.raises(ZeroDivisionError):
        ix.add(make("boom"))
    assert len(ix) == 0
    with pytest.raises(TypeError):
        Indexer({"s": lambda o: "not-a-list"}).add(make("x"))
    with pytest.raises(TypeError):
        Indexer({"n": 3})  # type: ignore[dict-item]
    # In process_batch: good keys before the failure are applied and returned; the failing
    # key stays queued (nothing lost) and raises on the next call.
    fifo = DeltaFIFO(ix)
    fifo.add(make("ok"))
    fifo.add(make("boom"))
    fifo.add(make("later"))
    out = process_batch(fifo, ix, timeout=0)
    assert [rep(o)[1] for _, o, _, _ in out] == ["ns/ok"]  # type: ignore[union-attr, index]
    assert fifo.list_keys() == ["ns/boom", "ns/later"]
    with pytest.raises(ZeroDivisionError):
        process_batch(fifo, ix, timeout=0)
    assert fifo.list_keys() == ["ns/boom", "ns/later"]
    fifo.check_invariants()
    ix.check_invariants()


def test_has_synced_and_is_in_initial_list() -> None:
    ix = Indexer()
    fifo = DeltaFIFO(ix)
    assert not fifo.has_synced()
    fifo.replace([make("a"), make("b")], "1")
    assert not fifo.has_synced()
    out = process_batch(fifo, ix, max_keys=1, timeout=0)
    assert [init for *_, init in out] == [True]  # type: ignore[union-attr]
    fifo.add(make("c"))
    out = process_batch(fifo, ix, max_keys=1, timeout=0)
    assert [init for *_, init in out] == [True]  # type: ignore[union-attr]
    assert fifo.has_synced()
    out = process_batch(fifo, ix, timeout=0)
    assert [(k, o.key, init) for k, o, _, init in out] == [(0, "ns/c", False)]  # type: ignore[union-attr]


def test_empty_replace_syncs_immediately_and_close_drains() -> None:
    fifo = DeltaFIFO()
    fifo.replace([], "1")
    assert fifo.has_synced()
    fifo.add(make("a"))
    fifo.close()
    assert fifo.closed
    got = fifo.pop(timeout=0)
    assert got is not None and got[0] == "ns/a" and [d.type for d in got[1]] == ["Added"]
    assert fifo.pop() is None
    assert process_batch(fifo, Indexer(), timeout=0) == -1
    assert process_batch(fifo, Indexer(), timeout=0, collect=False) == -1


def test_pop_timeout_and_blocking_pop_release_the_gil() -> None:
    fifo = DeltaFIFO()
    t0 = time.monotonic()
    assert fifo.pop(timeout=0.05) is None
    assert time.monotonic() - t0 >= 0.04
    assert process_batch(fifo, Indexer(), timeout=0.01) == []
    result: list[object] = []
    th = threading.Thread(target=lambda: result.append(fifo.pop()))
    th.start()
    time.sleep(0.05)  # the waiting thread must not hold the GIL, or this would hang
    fifo.add(make("a"))
    th.join(5)
    assert not th.is_alive()
    assert result and result[0][0] == "ns/a"  # type: ignore[index]


def test_resync_queues_sync_for_known_unqueued_objects() -> None:
    ix = Indexer()
    a, b = make("a"), make("b")
    ix.add(a)
    ix.add(b)
    fifo = DeltaFIFO(ix)
    b2 = make("b", rv="2")
    fifo.update(b2)
    fifo.resync()
    assert fifo.list_keys() == ["ns/b", "ns/a"]
    assert deltas(fifo, "ns/a") == [("Sync", rep(a))]
    assert deltas(fifo, "ns/b") == [("Updated", rep(b2))]
    out = process_batch(fifo, ix, timeout=0)
    assert isinstance(out, list)
    assert [(k, rep(o), rep(old)) for k, o, old, _ in out] == [(1, rep(b2), rep(b)), (1, rep(a), rep(a))]


def test_indexer_with_python_callables_joins_the_gc() -> None:
    class Holder:
        pass

    def make_cycle() -> weakref.ref[Holder]:
        h = Holder()

        def fn(o: StoredObject) -> list[str]:
            return [str(id(h))]

        h.ix = Indexer({"f": fn})  # type: ignore[attr-defined]
        h.ix.add(make("a"))  # type: ignore[attr-defined]
        return weakref.ref(h)

    ref = make_cycle()
    gc.collect()
    assert ref() is None


def test_nbytes_and_len() -> None:
    ix = Indexer({"ns": IndexFunc.namespace()})
    empty = ix.nbytes
    objs = [make(f"p{i}", labels={"app": "x" * 100}) for i in range(50)]
    ix.replace(objs, "1")
    assert len(ix) == 50
    assert ix.nbytes > empty + sum(o.nbytes for o in objs)
    assert "ns/p3" in ix and "ns/zz" not in ix


def test_processor_thread_with_python_index_and_concurrent_callers() -> None:
    """The processor (GIL released, Python index taking the GIL per object) runs while
    this thread feeds the FIFO, relists and reads the Indexer with the GIL held. Nothing
    may deadlock, and the end state must be exactly the last relist."""
    ix = Indexer({"first": lambda o: [o.name[:2]], "ns": IndexFunc.namespace()})
    fifo = DeltaFIFO(ix)
    seen: list[int] = []

    def processor() -> None:
        while True:
            n = process_batch(fifo, ix, max_keys=64, timeout=0.05, collect=False)
            if n == -1:
                return
            assert isinstance(n, int)
            seen.append(n)

    th = threading.Thread(target=processor)
    th.start()
    for round_ in range(20):
        for i in range(50):
            fifo.add(make(f"p{i}", rv=str(round_)))
        if round_ % 5 == 4:
            fifo.replace([make(f"p{i}", rv=f"r{round_}") for i in range(0, 50, 2)], str(round_))
        ix.list()
        ix.by_index("first", "p1")
        ix.check_invariants()
    final = [make(f"q{i}", rv="final") for i in range(10)]
    fifo.replace(final, "final")
    deadline = time.monotonic() + 10
    while len(fifo) and time.monotonic() < deadline:
        time.sleep(0.01)
    fifo.close()
    th.join(10)
    assert not th.is_alive()
    assert sorted(ix.list_keys()) == sorted(o.key for o in final)
    assert sorted(ix.list_index_values("first")) == ["q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9"]
    ix.check_invariants()
    assert sum(seen) >= 1000


def test_process_batch_requires_the_fifos_own_indexer() -> None:
    fifo = DeltaFIFO(Indexer())
    fifo.add(make("a"))
    with pytest.raises(ValueError):
        process_batch(fifo, Indexer(), timeout=0)
    assert len(fifo) == 1
    loose = DeltaFIFO()
    loose.add(make("a"))
    ix = Indexer()
    assert process_batch(loose, ix, timeout=0, collect=False) == 1
    assert ix.list_keys() == ["ns/a"]
