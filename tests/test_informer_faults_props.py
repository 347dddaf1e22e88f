"""Property: whatever the server does to the watch, the cache ends equal to the server and
every handler saw a consistent history. Random creates, updates and deletes interleaved with
dropped connections, 410s (in-stream and after compaction), truncated and malformed lines,
on both initial-sync paths (streaming list and LIST + WATCH), against the simulator."""

from __future__ import annotations

import threading
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kfast
from kfast.simulator import Simulator

FAULTS = ["close", "close_mid_line", "close_mid_chunk", "malformed", "expired", "gone", "compact"]

op = st.one_of(
    st.tuples(st.just("create"), st.integers(0, 10_000)),
    st.tuples(st.just("update"), st.integers(0, 10_000)),
    st.tuples(st.just("delete"), st.integers(0, 10_000)),
    st.tuples(st.just("fault"), st.sampled_from(FAULTS)),
    st.tuples(st.just("pause"), st.integers(1, 30)),
)


class Mirror:
    """Rebuilds the cache from notifications alone and records every inconsistency."""

    def __init__(self) -> None:
        self.objs: dict[str, tuple[str, str]] = {}  # key -> (uid, rv)
        self.problems: list[str] = []
        self.lock = threading.Lock()

    def on_add(self, o: kfast.ObjectView, _initial: bool) -> None:
        with self.lock:
            if o.key in self.objs:
                self.problems.append(f"add of present {o.key}")
            self.objs[o.key] = (o.uid, o.resource_version)

    def on_update(self, old: kfast.ObjectView, new: kfast.ObjectView) -> None:
        with self.lock:
            have = self.objs.get(new.key)
            if have is None:
                self.problems.append(f"update before add {new.key}")
            elif have != (old.uid, old.resource_version):
                self.problems.append(f"update from a state never seen {new.key}")
            if old.uid != new.uid:
                self.problems.append(f"update across uids {new.key}")
            self.objs[new.key] = (new.uid, new.resource_version)

    def on_delete(self, o: Any) -> None:
        with self.lock:
            if self.objs.pop(o.key, None) is None:
                self.problems.append(f"delete of absent {o.key}")


def wait_for(cond: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=30), watch_list=st.booleans(), seed=st.integers(1, 50))
def test_cache_and_handlers_stay_right_through_faults(ops: list[tuple[str, Any]], watch_list: bool,
                                                      seed: int) -> None:
    with Simulator(pods=15, seed=seed, bookmark_interval=3600) as sim:
        inf = kfast.SharedIndexInformer(kfast.Config.for_url(sim.url), "pods", watch_list=watch_list)
        mirror = Mirror()
        inf.add_event_handler(mirror.on_add, mirror.on_update, mirror.on_delete)
        late = Mirror()  # registered mid-run: replay + later events must be consistent too
        created = 0
        with inf:
            assert inf.wait_for_sync(10)
            assert sim.wait_for_watches(1)
            for i, (kind, arg) in enumerate(ops):
                keys = sim.keys()
                if kind == "create":
                    created += 1
                    sim.create("pods", {"metadata": {"name": f"p{created}-{arg}", "namespace": "default"}})
                elif kind == "update" and keys:
                    sim.update("pods", keys[arg % len(keys)])
                elif kind == "delete" and keys:
                    sim.delete("pods", keys[arg % len(keys)])
                elif kind == "fault":
                    if arg == "compact":
                        sim.compact("pods")
                        sim.break_open_watches("close")  # the resume finds its RV compacted
                    else:
                        sim.break_open_watches(arg)
                elif kind == "pause":
                    time.sleep(arg / 1000)
                if i == len(ops) // 2:
                    inf.add_event_handler(late.on_add, late.on_update, late.on_delete)

            def converged() -> bool:
                want = sim.state("pods")
                cache = {o.key: o.resource_version for o in inf.indexer.list()}
                with mirror.lock, late.lock:
                    return (cache == want
                            and {k: rv for k, (_u, rv) in mirror.objs.items()} == want
                            and {k: rv for k, (_u, rv) in late.objs.items()} == want)

            assert wait_for(converged, 30), (inf.runner.history[-10:], inf.runner.last_error)
            inf.indexer.check_invariants()
            assert mirror.problems == [] and late.problems == []
            uids = {o.key: o.uid for o in inf.indexer.list()}
            assert {k: u for k, (u, _rv) in mirror.objs.items()} == uids
