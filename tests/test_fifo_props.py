"""Stateful property test: DeltaFIFO + process_batch + Indexer against FifoModel."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from store_model import FifoModel, make, rep

from kfast._native import DeletedFinalStateUnknown, DeltaFIFO, Indexer, process_batch

names = st.sampled_from(["a", "b", "c", "d"])
uids = st.sampled_from(["u1", "u2"])


class FifoMachine(RuleBasedStateMachine):
    @initialize(with_known=st.booleans())
    def setup(self, with_known: bool) -> None:
        self.indexer = Indexer()
        self.fifo = DeltaFIFO(self.indexer if with_known else None)
        self.model = FifoModel(with_known=with_known)
        self.rv = 0

    def obj(self, name: str, uid: str):  # type: ignore[no-untyped-def]
        self.rv += 1
        return make(name, uid=uid, rv=str(self.rv))

    @rule(name=names, uid=uids)
    def add(self, name: str, uid: str) -> None:
        o = self.obj(name, uid)
        self.fifo.add(o)
        self.model.add(rep(o))

    @rule(name=names, uid=uids)
    def update(self, name: str, uid: str) -> None:
        o = self.obj(name, uid)
        self.fifo.update(o)
        self.model.update(rep(o))

    @rule(name=names, uid=uids)
    def delete(self, name: str, uid: str) -> None:
        o = self.obj(name, uid)
        self.fifo.delete(o)
        self.model.delete(rep(o))

    @rule(name=names, with_obj=st.booleans(), uid=uids)
    def delete_tombstone(self, name: str, with_obj: bool, uid: str) -> None:
        t = DeletedFinalStateUnknown(f"ns/{name}", self.obj(name, uid) if with_obj else None)
        self.fifo.delete(t)
        self.model.delete(rep(t))

    @rule(listed=st.lists(st.tuples(names, uids), max_size=4))
    def replace(self, listed: list[tuple[str, str]]) -> None:
        objs = [self.obj(n, u) for n, u in listed]
        self.fifo.replace(objs, str(self.rv))
        self.model.replace([rep(o) for o in objs])

    @rule()
    def resync(self) -> None:
        self.fifo.resync()
        self.model.resync()

    @rule()
    def pop(self) -> None:
        got = self.fifo.pop(timeout=0)
        want = self.model.pop()
        if want is None:
            assert got is None
            return
        assert got is not None
        key, deltas = got
        assert (key, [(d.type, rep(d.object)) for d in deltas]) == want[:2]
        # A bare pop does not touch the store; keep the model's known set in step.

    @rule(max_keys=st.integers(1, 5), collect=st.booleans())
    def process(self, max_keys: int, collect: bool) -> None:
        got = process_batch(self.fifo, self.indexer, max_keys=max_keys, timeout=0, collect=collect)
        want = self.model.process(max_keys)
        if isinstance(want, int):
            assert got == want
        elif collect:
            assert isinstance(got, list)
            assert [(k, rep(o), rep(old), init) for k, o, old, init in got] == want
        else:
            assert got == len(want)

    @precondition(lambda self: not self.model.closed)
    @rule()
    def close(self) -> None:
        self.fifo.close()
        self.model.closed = True

    @invariant()
    def matches_model(self) -> None:
        self.fifo.check_invariants()
        self.indexer.check_invariants()
        assert self.fifo.list_keys() == self.model.queue
        assert len(self.fifo) == len(self.model.queue)
        for key in self.model.queue:
            got = self.fifo.get_by_key(key)
            assert got is not None
            assert [(d.type, rep(d.object)) for d in got] == self.model.items[key]
        assert self.fifo.get_by_key("nope/nope") is None
        assert self.fifo.has_synced() == self.model.synced()
        assert self.fifo.closed == self.model.closed
        if self.model.with_known:
            assert {k: rep(self.indexer.get_by_key(k)) for k in self.indexer.list_keys()} == self.model.known


FifoMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestFifo = FifoMachine.TestCase
