"""Where the CPU of the informer's watch path goes, thread by thread (a loaded 2-core machine
makes wall time noisy; CPU time per thread is not).

    python benches/prof_watch.py [MODE ...] [--events 32000] [--repeat 2]

Modes (default: all), each over the same stream of pod events from the simulator process:

    recv       socket reads into a 1 MiB buffer, nothing else (the reader's floor)
    decode     + WatchDecoder.feed (events as Python objects)
    feed_fifo  + WatchDecoder.feed_fifo into a DeltaFIFO, no processor
    pipeline   feed_fifo + a processor thread running process_batch into an Indexer
               with the namespace and spec.nodeName indexes (bench_watch's pipeline row)
    pump       as pipeline, with WatchPump (decoding on a Rust thread) instead of feed_fifo
    informer   a SharedIndexInformer (same indexes, no handler) synced with --pods pods,
               then timed from releasing the churn until its cache matches the server
               (bench_watch's informer row; `kfast bench` is this with --pods 100000
               --events 50000)

For each run: wall time, events/s, and CPU ms of the reader, the processor, the pump's
decode thread and the simulator process (Linux /proc).
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time

from kfast import _native
from kfast.simulator._process import SimulatorProcess

MODES = ("recv", "decode", "feed_fifo", "pipeline", "pump", "informer")
_TICK = os.sysconf("SC_CLK_TCK")


def _task_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of ``pid``, by name (Python threads by their
    ``threading`` name; summed over threads of one name)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
            with open(f"{base}/{tid}/comm") as f:
                name = names.get(int(tid)) or f.read().strip()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + ns / 1e9
    return out


def _proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def run_once(mode: str, host: str, port: int, req: bytes, churn: object, sim_pid: int) -> str:
    nbytes, events = churn.nbytes, churn.events  # type: ignore[attr-defined]
    idx = _native.Indexer({"namespace": _native.IndexFunc.namespace(),
                           "node": _native.IndexFunc.field("spec.nodeName")})
    fifo = _native.DeltaFIFO(known_objects=idx)
    proc_cpu = [0.0]

    def process() -> None:
        t = time.thread_time()
        while _native.process_batch(fifo, idx, collect=False) != -1:
            pass
        proc_cpu[0] = time.thread_time() - t

    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    dec: object = _native.WatchPump() if mode == "pump" else _native.WatchDecoder(http=True)
    worker = threading.Thread(target=process, daemon=True)
    threaded = mode in ("pipeline", "pump")
    reads = got = queued = 0
    cpu0 = _task_cpu(os.getpid())
    sim0 = _proc_cpu(sim_pid)
    with socket.create_connection((host, port)) as s:
        t0 = time.perf_counter()
        c0 = time.thread_time()
        if threaded:
            worker.start()
        s.sendall(req)
        while got < nbytes and queued < events:
            k = s.recv_into(buf)
            if not k:
                break
            got += k
            reads += 1
            if mode == "decode":
                queued += len(dec.feed(mv[:k]))  # type: ignore[attr-defined]
            elif mode != "recv":
                queued += dec.feed_fifo(mv[:k], fifo).events  # type: ignore[attr-defined]
        if mode == "pump":
            queued += dec.feed_fifo(b"", fifo).events  # type: ignore[attr-defined]
        reader = time.thread_time() - c0
        if threaded:
            fifo.close()
            worker.join(300)
        dt = time.perf_counter() - t0
    cpu1 = _task_cpu(os.getpid())  # before close(): the pump's thread exits then
    if mode == "pump":
        dec.close()  # type: ignore[attr-defined]
    pump_cpu = cpu1.get("kfast-decode", 0.0) - cpu0.get("kfast-decode", 0.0)
    sim = _proc_cpu(sim_pid) - sim0
    cached = f" cached {len(idx)}" if threaded else ""
    return (f"{mode:9s} wall {dt * 1e3:6.1f} ms {events / dt:9,.0f} ev/s | cpu ms: reader {reader * 1e3:5.1f}"
            f"  pump {pump_cpu * 1e3:5.1f}  processor {proc_cpu[0] * 1e3:5.1f}  simulator {sim * 1e3:5.0f}"
            f" | reads {reads}{cached}")


def run_informer(args: argparse.Namespace) -> str:
    from kfast._bench import make_informer, wait_until_cache_matches
    from kfast._config import Config

    with SimulatorProcess(pods=args.pods, seed=1) as sim:
        churn = sim.prepare_churn("pods", args.events)
        inf = make_informer(Config.for_url(sim.url), "pods", None, None)
        inf.start()
        try:
            if not inf.wait_for_sync(300):
                return "informer did not sync"
            while len(inf.indexer) < args.pods:
                time.sleep(0.01)
            sim_pid = sim._proc.pid  # noqa: SLF001
            cpu0, sim0 = _task_cpu(os.getpid()), _proc_cpu(sim_pid)
            t0 = time.perf_counter()
            sim.release_churn()
            # CPU is sampled as soon as the churn's last event is applied and the FIFO is
            # empty, before the full comparison (which fetches the server's state).
            idx, fifo = inf.indexer, inf.fifo
            while True:
                o = idx.get_by_key(churn.last_key)
                done = (o is None) if churn.last_is_delete else (
                    o is not None and o.resource_version == churn.last_rv)
                if done and len(fifo) == 0:
                    break
                time.sleep(0.002)
            cpu1, sim1 = _task_cpu(os.getpid()), _proc_cpu(sim_pid)
            t_done, ok, _ = wait_until_cache_matches(inf, sim, churn, 300)
        finally:
            inf.stop()
    dt = t_done - t0
    cpu = {k: v - cpu0.get(k, 0.0) for k, v in cpu1.items() if v - cpu0.get(k, 0.0) > 0.0005}
    threads = "  ".join(f"{k} {v * 1e3:.1f}" for k, v in sorted(cpu.items()))
    return (f"informer  wall {dt * 1e3:6.1f} ms {churn.events / dt:9,.0f} ev/s | cpu ms: {threads}"
            f"  simulator {(sim1 - sim0) * 1e3:.0f} | {'cache verified' if ok else 'CACHE MISMATCH'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("modes", nargs="*", choices=MODES + ((),), default=list(MODES))
    p.add_argument("--events", type=int, default=32_000)
    p.add_argument("--pods", type=int, default=1_000)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    modes = args.modes or MODES
    if "informer" in modes:
        for _ in range(args.repeat):
            print(run_informer(args), flush=True)
        modes = [m for m in modes if m != "informer"]
        if not modes:
            return
    with SimulatorProcess(pods=args.pods, seed=1) as sim:
        churn = sim.prepare_churn("pods", args.events)
        sim.release_churn()
        rv = str(int(churn.first_rv) - 1)
        host, port = sim.url.removeprefix("http://").split(":")
        req = (f"GET /api/v1/pods?watch=true&resourceVersion={rv}&timeoutSeconds=600 HTTP/1.1\r\n"
               f"Host: {host}:{port}\r\nAccept: application/json\r\n\r\n").encode()
        sim_pid = sim._proc.pid  # noqa: SLF001 - its CPU is part of the picture
        print(f"{churn.events:,} events, {churn.nbytes / 1e6:.0f} MB; load {os.getloadavg()[0]:.2f}")
        for mode in modes:
            for _ in range(args.repeat):
                print(run_once(mode, host, int(port), req.encode() if isinstance(req, str) else req,
                               churn, sim_pid), flush=True)


if __name__ == "__main__":
    main()
