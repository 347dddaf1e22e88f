"""One watch stream of N pod events, consumed side by side by several clients in one run.

    python benches/bench_watch.py [--events 32000] [--pods 1000] [--k8s-events 3000] [--json]

The simulator (its own process) holds ``--pods`` pods and a pre-built churn of ``--events``
events (updates, deletes, creates; one HTTP chunk per event). Consumers that only read the
stream replay it from the resourceVersion before the churn. An informer must list first, so
each informer run gets a fresh simulator with the same seed: the same bytes, event for event.

Columns: events/s, MB/s of the framed watch body, ratio to httpx + iter_lines + json.loads,
and, for informers, the RSS growth of this process while the cache is held.
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from typing import Any

import httpx

from _common import (Row, emit, pending, print_table,
                     rss_bytes, run_isolated)
from kfast.simulator._process import ChurnInfo, SimulatorProcess

BASELINE = "httpx + iter_lines + json.loads"


def _request(url: str, rv: str) -> tuple[tuple[str, int], bytes]:
    host, port = url.removeprefix("http://").split(":")
    req = (f"GET /api/v1/pods?watch=true&resourceVersion={rv}&timeoutSeconds=600 HTTP/1.1\r\n"
           f"Host: {host}:{port}\r\nAccept: application/json\r\n\r\n").encode()
    return (host, int(port)), req


def raw_socket(url: str, rv: str, churn: ChurnInfo) -> Row:
    """The physical ceiling: recv_into a 1 MiB buffer until the stream's bytes arrived."""
    addr, req = _request(url, rv)
    buf = bytearray(1 << 20)
    with socket.create_connection(addr) as s:
        t0 = time.perf_counter()
        s.sendall(req)
        got = 0
        while got < churn.nbytes:  # head bytes make this stop a few bytes early at most
            n = s.recv_into(buf)
            if not n:
                break
            got += n
        dt = time.perf_counter() - t0
    return Row("raw socket recv_into (1 MiB), no parsing", churn.events, dt, churn.nbytes)


def httpx_iter_raw(url: str, rv: str, churn: ChurnInfo) -> Row:
    got = 0
    with httpx.Client(base_url=url, timeout=60) as c:
        t0 = time.perf_counter()
        params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "600"}
        with c.stream("GET", "/api/v1/pods", params=params) as r:
            for chunk in r.iter_raw():
                got += len(chunk)
                if got >= churn.nbytes - 16 * churn.events:  # de-chunked body is smaller
                    break
        dt = time.perf_counter() - t0
    return Row("httpx iter_raw, bytes only", churn.events, dt, churn.nbytes)


def httpx_json(url: str, rv: str, churn: ChurnInfo) -> Row:
    n = 0
    with httpx.Client(base_url=url, timeout=60) as c:
        t0 = time.perf_counter()
        params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "600"}
        with c.stream("GET", "/api/v1/pods", params=params) as r:
            for line in r.iter_lines():
                if line:
                    json.loads(line)
                    n += 1
                    if n >= churn.events:
                        break
        dt = time.perf_counter() - t0
    return Row(BASELINE, n, dt, churn.nbytes)


def kubernetes_client(url: str, rv: str, churn: ChurnInfo, limit: int) -> Row:
    """The official client: every event becomes a V1Pod model (measured on ``limit`` events,
    because it runs at about a thousand events/s)."""
    try:
        from kubernetes import client
        from kubernetes import watch as k8s_watch
    except ImportError:
        return pending("kubernetes Watch().stream", "pip install kubernetes (the bench extra)")
    cfg = client.Configuration()
    cfg.host = url
    api = client.CoreV1Api(client.ApiClient(cfg))
    n = 0
    want = min(limit, churn.events)
    watch: Any = k8s_watch  # untyped package
    w = watch.Watch()
    t0 = time.perf_counter()
    for _ in w.stream(api.list_pod_for_all_namespaces, resource_version=rv, timeout_seconds=600):
        n += 1
        if n >= want:
            w.stop()
            break
    dt = time.perf_counter() - t0
    return Row("kubernetes Watch().stream (V1Pod models)", n, dt,
               int(churn.nbytes * n / churn.events), note=f"first {n:,} events")


def kfast_decoder(url: str, rv: str, churn: ChurnInfo) -> Row:
    """kfast's Rust decoder alone: raw socket reads of 1 MiB fed to WatchDecoder(http=True)."""
    from kfast import _native

    if not hasattr(_native, "WatchDecoder"):
        return pending("kfast WatchDecoder (socket + Rust decode)",
                       "kfast._native.WatchDecoder not in this build (branch decode)")
    addr, req = _request(url, rv)
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    dec = _native.WatchDecoder(http=True)
    n = 0
    with socket.create_connection(addr) as s:
        t0 = time.perf_counter()
        s.sendall(req)
        while n < churn.events:
            k = s.recv_into(buf)
            if not k:
                break
            n += len(dec.feed(mv[:k]))
        dt = time.perf_counter() - t0
    return Row("kfast WatchDecoder (socket + Rust decode)", n, dt, churn.nbytes,
               note="events as lazy StoredObjects")


def kfast_pipeline(url: str, rv: str, churn: ChurnInfo, pump: bool = False) -> Row:
    """The informer's hot path without its threads and reflector: socket reads fed to
    ``WatchDecoder.feed_fifo`` (no Python object per event), a processor thread running
    ``process_batch`` into an Indexer with the namespace and spec.nodeName indexes. With
    ``pump``, reads go to a ``WatchPump`` instead, which decodes on a Rust thread while the
    reader reads on (what the informer does on a socket it owns)."""
    import threading

    from kfast import _native
    from kfast._bench import settle_memory

    name = ("kfast pump (decode thread) -> DeltaFIFO -> Indexer" if pump
            else "kfast decode -> DeltaFIFO -> Indexer (Rust only)")
    if not hasattr(_native, "WatchDecoder") or not hasattr(_native.WatchDecoder, "feed_fifo"):
        return pending(name, "WatchDecoder.feed_fifo not in this build (the informer needs it)")
    if pump and not hasattr(_native, "WatchPump"):
        return pending(name, "kfast._native.WatchPump not in this build")
    idx = _native.Indexer({"namespace": _native.IndexFunc.namespace(),
                           "node": _native.IndexFunc.field("spec.nodeName")})
    fifo = _native.DeltaFIFO(known_objects=idx)

    def process() -> None:
        # process_batch returns -1 once the FIFO is closed and drained.
        while _native.process_batch(fifo, idx, collect=False) != -1:
            pass

    addr, req = _request(url, rv)
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    dec: Any = _native.WatchPump() if pump else _native.WatchDecoder(http=True)
    worker = threading.Thread(target=process, daemon=True)
    queued = got = 0
    settle_memory()
    rss0 = rss_bytes()
    with socket.create_connection(addr) as s:
        t0 = time.perf_counter()
        worker.start()
        s.sendall(req)
        while queued < churn.events:
            if pump and got >= churn.nbytes:
                # The pump reports events as its thread finishes them: once the stream's
                # bytes are in, wait for the rest (the head makes `got` run ahead a little).
                queued += dec.feed_fifo(b"", fifo).events
                if queued >= churn.events:
                    break
            k = s.recv_into(buf)
            if not k:
                break
            got += k
            queued += dec.feed_fifo(mv[:k], fifo).events
        if pump:
            dec.close()
        fifo.close()
        worker.join(300)
        dt = time.perf_counter() - t0
    settle_memory()
    return Row(name, queued, dt, churn.nbytes, memory_bytes=rss_bytes() - rss0,
               note=f"{len(idx):,} objects cached" + ("" if not worker.is_alive()
                                                      else "; PROCESSOR DID NOT FINISH"))


def kfast_informer(args: argparse.Namespace, handler: bool) -> Row:
    """A fresh simulator (same seed, same stream); informer lists, then the churn is
    released and timed until the cache holds the server's final state."""
    from kfast._bench import (make_informer, native_missing, settle_memory,
                              wait_until_cache_matches)
    from kfast._config import Config

    name = "kfast informer" + (" + Python handler" if handler else ", no handler")
    missing = native_missing()
    if missing:
        return pending(name, f"kfast._native lacks {', '.join(missing)}")
    with SimulatorProcess(pods=args.pods, seed=args.seed) as sim:
        churn = sim.prepare_churn("pods", args.events)
        calls = [0]

        def count(_: Any) -> None:
            calls[0] += 1

        settle_memory()
        rss0 = rss_bytes()
        inf = make_informer(Config.for_url(sim.url), "pods", None, count if handler else None)
        inf.start()
        try:
            if not inf.wait_for_sync(120):
                return pending(name, "did not sync within 120 s")
            n_req = len(sim.requests())
            t0 = time.perf_counter()
            sim.release_churn()
            t_done, ok, _ = wait_until_cache_matches(inf, sim, churn, 300)
            dt = t_done - t0
            settle_memory()  # what the cache keeps, not the freed FIFO backlog
            mem = rss_bytes() - rss0
            extra = [f"{v} {c}" for v, c in sim.requests()[n_req:] if v == "list" or c != 200]
        finally:
            inf.stop()
    note = ("cache verified" if ok else "CACHE MISMATCH") + (
        f", {calls[0]:,} handler calls" if handler else "")
    if extra:
        # A relist also ends with the right cache; then this row did not measure a watch.
        note += f"; NOT A CLEAN WATCH: {len(extra)} extra requests ({extra[0]}, ...)"
    return Row(name, churn.events, dt, churn.nbytes, memory_bytes=mem, note=note)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=32_000)
    p.add_argument("--pods", type=int, default=1_000, help="initial pods (what informers list)")
    p.add_argument("--k8s-events", type=int, default=3_000,
                   help="events for the (slow) official kubernetes client")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--only", choices=("informer", "informer-handler"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.only:
        emit(kfast_informer(args, handler=args.only == "informer-handler"))
        return

    rows: list[Row] = []
    with SimulatorProcess(pods=args.pods, seed=args.seed) as sim:
        churn = sim.prepare_churn("pods", args.events)
        sim.release_churn()
        rv = str(int(churn.first_rv) - 1)
        rows.append(raw_socket(sim.url, rv, churn))
        rows.append(httpx_iter_raw(sim.url, rv, churn))
        rows.append(httpx_json(sim.url, rv, churn))
        rows.append(kubernetes_client(sim.url, rv, churn, args.k8s_events))
        rows.append(kfast_decoder(sim.url, rv, churn))
        rows.append(kfast_pipeline(sim.url, rv, churn))
        rows.append(kfast_pipeline(sim.url, rv, churn, pump=True))
    # Each informer in a fresh interpreter: its RSS growth is then what its cache keeps.
    common = ["--events", str(args.events), "--pods", str(args.pods), "--seed", str(args.seed)]
    rows.append(run_isolated(__file__, ["--only", "informer", *common]))
    rows.append(run_isolated(__file__, ["--only", "informer-handler", *common]))
    mean = churn.nbytes / churn.events
    print_table(f"watch: {churn.events:,} pod events, {churn.nbytes / 1e6:,.0f} MB framed "
                f"({mean:,.0f} B/event), one chunk per event", rows, BASELINE,
                as_json=args.json)


if __name__ == "__main__":
    main()
