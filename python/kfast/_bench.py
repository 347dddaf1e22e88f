"""``kfast bench``: informer throughput against the embedded simulator (or a real cluster).

Simulator mode, in order: start the simulator in its own process with N pods and pre-build
the churn (updates, deletes, creates) as bytes; start a kfast informer with a namespace and a
``spec.nodeName`` index and time its initial sync; release the churn and time the watch until
the cache holds exactly the server's keys and resourceVersions; then, on the same stream
(replayed by the simulator from the same resourceVersion), time plain ``httpx`` +
``json.loads`` per line as the baseline. Memory is the client process's own: the simulator's
bytes live in the other process.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from kfast import errors

__all__ = ["BenchOptions", "BenchResult", "run_bench", "format_result", "result_json",
           "Progress", "rss_bytes", "peak_rss_bytes", "settle_memory", "make_informer", "native_missing",
           "httpx_baseline", "wait_until_cache_matches"]


@dataclass
class BenchOptions:
    objects: int = 100_000
    churn: int = 100_000
    updates: float = 0.8
    deletes: float = 0.1
    handler: bool = False
    baseline: bool = True
    seed: int = 1
    progress: bool = True
    kubeconfig: str | None = None
    context: str | None = None
    resource: str = "pods"
    namespace: str | None = None
    duration: float = 10.0
    timeout: float = 300.0
    indexes: tuple[str, ...] = ("namespace", "node")

    @property
    def cluster(self) -> bool:
        return self.kubeconfig is not None or self.context is not None


@dataclass
class BenchResult:
    mode: str  # "simulator" or "cluster"
    resource: str
    objects: int
    sync_seconds: float
    sync_objects_per_second: float
    handler: bool
    watch_events: int = 0
    watch_seconds: float = 0.0
    watch_events_per_second: float = 0.0
    verified: bool | None = None
    verify_detail: str = ""
    mean_object_json_bytes: float = 0.0
    peak_rss_bytes: int = 0
    rss_delta_after_sync_bytes: int = 0
    bytes_per_cached_object: float = 0.0
    indexer_bytes_per_object: float | None = None
    baseline_events_per_second: float | None = None
    ratio_vs_baseline: float | None = None
    handler_calls: int = 0
    indexes: list[str] = field(default_factory=list)
    # Requests the informer made during the watch phase: one watch is the healthy case;
    # any list means it relisted, and the events/s is then not a watch measurement.
    watch_phase_requests: dict[str, int] = field(default_factory=dict)
    server: str = ""
    # How the initial sync was done: "streaming list" (WatchList) or "paginated LIST (N
    # pages)" / "LIST" (one unpaginated page); see initial_sync_kind.
    initial_sync: str = ""
    # The informer's watch events by type (its metrics; a streaming list's initial events
    # are ADDED events).
    events_by_type: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Reasons not to trust the rates above (a phase too short to time), shown in both outputs.
    warnings: list[str] = field(default_factory=list)


# Below either bound a watch phase is dominated by start-up, timer resolution and scheduling
# noise: a rate computed from it says little (e.g. --churn 5 reports anything from 2k to 200k/s).
MIN_MEASURED_SECONDS = 0.5
MIN_MEASURED_EVENTS = 1000


def measurement_warnings(r: BenchResult) -> list[str]:
    """Why the watch rate of ``r`` is too noisy to compare, if it is."""
    if not r.watch_seconds:
        return []
    if r.watch_seconds >= MIN_MEASURED_SECONDS and r.watch_events >= MIN_MEASURED_EVENTS:
        return []
    fix = ("use a larger --churn" if r.mode == "simulator"
           else "use a longer --duration on a busier resource")
    return [f"the watch phase was too short to measure ({r.watch_events:,} events in "
            f"{r.watch_seconds:.3f} s; want >= {MIN_MEASURED_EVENTS:,} events and >= "
            f"{MIN_MEASURED_SECONDS} s): watch events/s"
            + (" and the baseline ratio are" if r.ratio_vs_baseline is not None else " is")
            + f" noise; {fix}"]


# ------------------------------------------------------------------------------- utilities


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc; 0 when unknown)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def settle_memory() -> None:
    """Collect garbage and hand freed heap back to the OS (glibc ``malloc_trim``), so that
    RSS shows what is kept, not what a list page left behind."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class Progress:
    """A carriage-return progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, label: str, total: int | None, enabled: bool = True) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.t0 = time.monotonic()
        self._last = 0.0

    def update(self, n: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        el = now - self.t0
        if self.total:
            frac = min(1.0, n / self.total)
            bar = "#" * int(frac * 30)
            text = f"{self.label:<28} [{bar:<30}] {frac:4.0%} {n:>10,}/{self.total:,} {el:6.1f}s"
        else:
            text = f"{self.label:<28} {n:>10,} {el:6.1f}s"
        sys.stderr.write("\r" + text)
        sys.stderr.flush()

    def done(self, n: int) -> None:
        if self.enabled:
            self.update(n, force=True)
            sys.stderr.write("\n")
            sys.stderr.flush()


# ----------------------------------------------------------------------- informer (kfast)


def make_informer(config: Any, resource: str, namespace: str | None,
                  on_event: Callable[[Any], None] | None,
                  indexes: tuple[str, ...] = ("namespace", "node")) -> Any:
    """INTEGRATION POINT with branch ``informer``: a SharedIndexInformer with the built-in
    Rust indexes the benchmark promises (namespace, ``spec.nodeName`` as "node") and, when
    asked, one Python handler that reads ``obj["metadata"]["name"]``."""
    from kfast import index
    from kfast.informer import SharedIndexInformer

    def build(name: str) -> Any:
        return index.by_namespace() if name == "namespace" else index.by_field("spec.nodeName")

    inf = SharedIndexInformer(config, resource=resource, namespace=namespace,
                              indexers={name: build(name) for name in indexes})
    if on_event is not None:
        cb = on_event
        inf.add_event_handler(on_add=lambda o: cb(o["metadata"]["name"]),
                              on_update=lambda old, new: cb(new["metadata"]["name"]),
                              on_delete=lambda o: cb(o))
    return inf


NATIVE_NEEDED = ("IndexFunc", "Indexer", "DeltaFIFO", "WatchDecoder", "process_batch")


def native_missing() -> list[str]:
    """Names of the native pieces the informer needs that this build lacks."""
    from kfast import _native

    return [n for n in NATIVE_NEEDED if not hasattr(_native, n)]


def _verify(indexer: Any, expected: dict[str, str]) -> tuple[bool, str]:
    """Same keys and the same resourceVersion for each, as the server's final state."""
    have = len(indexer)
    if have != len(expected):
        return False, f"{have:,} objects cached, server has {len(expected):,}"
    wrong = 0
    example = ""
    for k, rv in expected.items():
        o = indexer.get_by_key(k)
        if o is None or o.resource_version != rv:
            wrong += 1
            if not example:
                example = f"{k}: cache {None if o is None else o.resource_version}, server {rv}"
    if wrong:
        return False, f"{wrong:,} keys differ (e.g. {example})"
    return True, f"{len(expected):,} keys, all resourceVersions equal"


def initial_sync_kind(inf: Any) -> str:
    """Whether the informer's initial sync was a streaming list or a (paginated) LIST."""
    m = inf.metrics()
    if m.streaming_list:
        return "streaming list (WatchList)"
    why = " after the streaming list was refused" if m.streaming_list is False else ""
    if m.list_requests > 1:
        return f"paginated LIST ({m.list_requests} pages){why}"
    return f"LIST (one page){why}"


def _sync(inf: Any, total: int | None, opts: BenchOptions, label: str) -> float:
    """Seconds from start until the informer has synced AND its Indexer holds the list.

    has_synced() alone can turn true while the last popped batch is still being applied
    (seen with the pure-Python contract model: 28 of 32 objects cached), so with a known
    total the Indexer must hold it; without one, its size must stop changing."""
    bar = Progress(label, total, opts.progress)
    t0 = time.perf_counter()
    inf.start()
    end = t0 + opts.timeout
    last, stable_since = -1, 0.0
    while True:
        now = time.perf_counter()
        if now > end:
            raise TimeoutError(f"informer did not sync within {opts.timeout:.0f} s")
        if not inf.has_synced() and now - t0 > 5.0:
            # Still not synced: if the informer keeps failing (404 for an unknown resource,
            # 403, a refused connection), say why instead of spinning until --timeout.
            err = getattr(getattr(inf, "runner", None), "last_error", None)
            if isinstance(err, (errors.NotFound, errors.Forbidden, errors.Unauthorized,
                                errors.TransportError, errors.ConfigError)):
                inf.stop()
                raise err
        n = len(inf.indexer)
        if inf.has_synced():
            if total is not None and n >= total:
                t_end = now
                break
            if total is None:
                if n != last:
                    last, stable_since = n, now
                elif now - stable_since >= 0.05:
                    t_end = stable_since  # when the size last changed
                    break
        bar.update(n)
        time.sleep(0.002)
    dt = t_end - t0
    bar.done(len(inf.indexer))
    return dt


# ----------------------------------------------------------------------------- simulator


def _run_simulator(opts: BenchOptions) -> BenchResult:
    from kfast._config import Config
    from kfast.simulator._process import SimulatorProcess

    bar = Progress("starting simulator", None, opts.progress)
    with SimulatorProcess(pods=opts.objects, seed=opts.seed) as sim:
        stats = sim.stats("pods")
        churn = sim.prepare_churn("pods", opts.churn, updates=opts.updates,
                                  deletes=opts.deletes)
        bar.done(stats.objects)
        calls = [0]

        def count(_: Any) -> None:
            calls[0] += 1

        settle_memory()
        rss0 = rss_bytes()
        res = BenchResult("simulator", "pods", stats.objects, 0.0, 0.0, opts.handler,
                          mean_object_json_bytes=stats.mean_object_bytes, server=sim.url)
        missing = native_missing()
        if missing:
            # The informer needs the Rust store and decoder (branches decode/store); until
            # they are in this build, measure the baseline alone and say so.
            res.notes.append(f"kfast informer PENDING: kfast._native lacks {', '.join(missing)}")
            sim.release_churn()
            if opts.baseline and churn.events:
                res.baseline_events_per_second = httpx_baseline(
                    sim.url, "/api/v1/pods", str(int(churn.first_rv) - 1), churn.events,
                    opts.progress)
            res.peak_rss_bytes = peak_rss_bytes()
            return res
        inf = make_informer(Config.for_url(sim.url), "pods", None,
                            count if opts.handler else None, opts.indexes)
        try:
            res.sync_seconds = _sync(inf, stats.objects, opts, "initial sync (streaming list, else paginated LIST)")
            res.sync_objects_per_second = stats.objects / res.sync_seconds
            res.initial_sync = initial_sync_kind(inf)
            settle_memory()
            res.rss_delta_after_sync_bytes = rss_bytes() - rss0
            res.bytes_per_cached_object = res.rss_delta_after_sync_bytes / max(1, len(inf.indexer))
            nbytes = getattr(inf.indexer, "nbytes", None)
            if isinstance(nbytes, int):
                res.indexer_bytes_per_object = nbytes / max(1, len(inf.indexer))
            if churn.events:
                _watch_phase(inf, sim, churn, opts, res)
            res.peak_rss_bytes = peak_rss_bytes()
            res.handler_calls = calls[0]
        finally:
            inf.stop()
        if opts.baseline and churn.events:
            from_rv = str(int(churn.first_rv) - 1)
            res.baseline_events_per_second = httpx_baseline(sim.url, "/api/v1/pods", from_rv,
                                                            churn.events, opts.progress)
            if res.watch_events_per_second:
                res.ratio_vs_baseline = res.watch_events_per_second / res.baseline_events_per_second
    return res


def wait_until_cache_matches(inf: Any, sim: Any, churn: Any, timeout: float,
                             bar: Progress | None = None) -> tuple[float, bool, str]:
    """Poll until the informer's cache equals the simulator's state after ``churn``;
    returns (perf_counter when it first did, matched, detail).

    The DeltaFIFO pops keys in the order they were first queued, so the churn's last event
    being applied does not mean every event is: it only gates the full comparison, together
    with an empty FIFO and the right object count."""
    idx, fifo = inf.indexer, inf.fifo
    base_rv = int(churn.first_rv)
    expected: dict[str, str] | None = None
    end = time.perf_counter() + timeout
    while True:
        now = time.perf_counter()
        o = idx.get_by_key(churn.last_key)
        last_done = (o is None) if churn.last_is_delete else (
            o is not None and o.resource_version == churn.last_rv)
        if last_done and len(fifo) == 0:
            if expected is None:
                expected = sim.state("pods")
            if len(idx) == len(expected):
                ok, detail = _verify(idx, expected)
                if ok:
                    return now, True, detail
        if now > end:
            ok, detail = _verify(idx, expected or sim.state("pods"))
            return time.perf_counter(), ok, detail + " (timed out)"
        if bar is not None:
            rv = o.resource_version if o is not None else ""
            bar.update(max(0, int(rv) - base_rv) if rv.isdigit() else 0)
        time.sleep(0.002)


def _watch_phase(inf: Any, sim: Any, churn: Any, opts: BenchOptions, res: BenchResult) -> None:
    bar = Progress("watch (churn)", churn.events, opts.progress)
    n_req = len(sim.requests())
    t0 = time.perf_counter()
    sim.release_churn()
    t_done, ok, detail = wait_until_cache_matches(inf, sim, churn, opts.timeout, bar)
    bar.done(churn.events)
    res.watch_events = churn.events
    res.watch_seconds = t_done - t0
    res.watch_events_per_second = churn.events / res.watch_seconds
    res.verified, res.verify_detail = ok, detail
    counts: dict[str, int] = {}
    for verb, status in sim.requests()[n_req:]:
        k = f"{verb} {status}"
        counts[k] = counts.get(k, 0) + 1
    res.watch_phase_requests = counts
    res.events_by_type = dict(inf.metrics().events_by_type)
    relists = sum(v for k, v in counts.items() if k.startswith("list"))
    failed = sum(v for k, v in counts.items() if not k.endswith(" 200"))
    watches = sum(v for k, v in counts.items() if k.startswith("watch"))
    if relists or failed or watches > 1:
        res.notes.append(f"NOT A CLEAN WATCH: during the watch phase the informer made {counts} "
                         "(it reconnected or relisted); events/s includes that")


def httpx_baseline(url: str, path: str, from_rv: str, events: int, progress: bool = True) -> float:
    """Events/s of ``httpx`` streaming + ``iter_lines()`` + ``json.loads`` per line over
    ``events`` watch events replayed from ``from_rv``."""
    bar = Progress("baseline httpx+json.loads", events, progress)
    n = 0
    params = {"watch": "true", "resourceVersion": from_rv, "timeoutSeconds": "600"}
    with httpx.Client(base_url=url, timeout=60) as c:
        t0 = time.perf_counter()
        with c.stream("GET", path, params=params) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line:
                    continue
                ev = json.loads(line)
                if ev["type"] != "BOOKMARK":
                    n += 1
                    if n % 1000 == 0:
                        bar.update(n)
                    if n >= events:
                        break
        dt = time.perf_counter() - t0
    bar.done(n)
    return n / dt


# ------------------------------------------------------------------------------- cluster


def _run_cluster(opts: BenchOptions) -> BenchResult:
    from kfast._config import load_config

    cfg = load_config(opts.kubeconfig, opts.context)
    res = BenchResult("cluster", opts.resource, 0, 0.0, 0.0, opts.handler,
                      server=str(getattr(cfg, "server", "")))
    missing = native_missing()
    if missing:
        res.notes.append(f"kfast informer PENDING: kfast._native lacks {', '.join(missing)}")
        return res
    calls = [0]

    def count(_: Any) -> None:
        calls[0] += 1

    settle_memory()
    rss0 = rss_bytes()
    # Without --handler the events are still counted, by a handler that only counts.
    inf = make_informer(cfg, opts.resource, opts.namespace, count, opts.indexes)
    try:
        res.sync_seconds = _sync(inf, None, opts, f"initial sync ({opts.resource})")
        res.objects = len(inf.indexer)
        res.sync_objects_per_second = res.objects / max(res.sync_seconds, 1e-9)
        res.initial_sync = initial_sync_kind(inf)
        settle_memory()
        res.rss_delta_after_sync_bytes = rss_bytes() - rss0
        res.bytes_per_cached_object = res.rss_delta_after_sync_bytes / max(1, res.objects)
        objs = inf.indexer.list()[:2000]
        if objs:
            res.mean_object_json_bytes = sum(o.nbytes for o in objs) / len(objs)
        start_calls = calls[0]
        bar = Progress(f"watching {opts.duration:.0f}s", None, opts.progress)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < opts.duration:
            bar.update(calls[0] - start_calls)
            time.sleep(0.05)
        bar.done(calls[0] - start_calls)
        res.watch_events = calls[0] - start_calls
        res.watch_seconds = time.perf_counter() - t0
        res.watch_events_per_second = res.watch_events / res.watch_seconds
        res.peak_rss_bytes = peak_rss_bytes()
        res.handler_calls = calls[0]
        res.notes.append("cluster mode is read-only (list + watch); events/s is the rate the "
                         "cluster produced, not a throughput ceiling")
    finally:
        inf.stop()
    return res


def run_bench(opts: BenchOptions) -> BenchResult:
    res = _run_cluster(opts) if opts.cluster else _run_simulator(opts)
    res.indexes = list(opts.indexes)
    res.warnings += measurement_warnings(res)
    return res


# -------------------------------------------------------------------------------- output


def format_result(r: BenchResult) -> str:
    mb = 1024 * 1024
    lines = [f"kfast bench ({r.mode}: {r.server}; {os.cpu_count()} CPUs)",
             f"  objects                       {r.objects:>12,} {r.resource}"
             + (f", mean JSON {r.mean_object_json_bytes:,.0f} B" if r.mean_object_json_bytes else "")]
    if r.sync_seconds:
        lines.append(f"  initial sync                  {r.sync_seconds:>12.2f} s"
                     f"   ({r.sync_objects_per_second:,.0f} objects/s"
                     + (f", {r.initial_sync})" if r.initial_sync else ")"))
    if r.watch_seconds:
        lines.append(f"  watch events                  {r.watch_events:>12,}"
                     f"   in {r.watch_seconds:.2f} s")
        lines.append(f"  watch events/s                {r.watch_events_per_second:>12,.0f}"
                     + ("   (Python handler on" if r.handler else "   (no Python handler")
                     + f"; indexes: {', '.join(r.indexes) or 'none'})")
    if r.events_by_type:
        by = r.events_by_type
        lines.append(f"  events by type (+ initial)    {sum(by.values()):>12,}   ("
                     + ", ".join(f"{k} {v:,}" for k, v in by.items()) + ")")
    if r.verified is not None:
        lines.append(f"  cache matches server          {'yes' if r.verified else 'NO':>12}"
                     f"   ({r.verify_detail})")
    lines.append(f"  peak RSS                      {r.peak_rss_bytes / mb:>12,.0f} MB")
    if r.sync_seconds:
        per = f"  bytes per cached object       {r.bytes_per_cached_object:>12,.0f} B (RSS growth)"
        if r.indexer_bytes_per_object is not None:
            per += f", {r.indexer_bytes_per_object:,.0f} B (indexer.nbytes)"
        if r.mean_object_json_bytes:
            per += f"; x{r.bytes_per_cached_object / r.mean_object_json_bytes:.2f} of mean JSON"
        lines.append(per)
    if r.baseline_events_per_second is not None:
        lines.append(f"  baseline httpx+json.loads     {r.baseline_events_per_second:>12,.0f} "
                     "events/s (same stream)")
    if r.ratio_vs_baseline is not None:
        lines.append(f"  kfast / baseline              {r.ratio_vs_baseline:>12.1f}x")
    lines += [f"  note: {n}" for n in r.notes]
    lines += [f"  WARNING: {w}" for w in r.warnings]
    return "\n".join(lines)


def result_json(r: BenchResult) -> str:
    return json.dumps(asdict(r), indent=2)
