"""Listing ConfigMaps (~1 KB each), side by side in one run.

    python benches/bench_list.py [--objects 10000] [--limit 500] [--repeat 3] [--json]

Every consumer pages through the whole collection with the same ``limit`` from the same
simulator (its own process). The best of ``--repeat`` runs is reported; memory is the RSS
growth of this process while the listed objects are still referenced.
"""

from __future__ import annotations

import argparse
import gc
import os
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from _common import Row, emit, print_table, rss_bytes, run_isolated
from kfast.simulator._process import SimulatorProcess

BASELINE = "httpx + json.loads"
PATH = "/api/v1/configmaps"


def _best(name: str, fn: Callable[[], tuple[int, int, Any]], repeat: int, note: str = "") -> Row:
    """Fastest of ``repeat`` runs; memory from the first (fresh process, nothing reused)."""
    best: Row | None = None
    first_mem = 0
    for i in range(repeat):
        gc.collect()
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        n, nbytes, keep = fn()
        dt = time.perf_counter() - t0
        if i == 0:
            first_mem = max(0, rss_bytes() - rss0)
        del keep
        row = Row(name, n, dt, nbytes, note=note)
        if best is None or row.seconds < best.seconds:
            best = row
    assert best is not None
    best.memory_bytes = first_mem
    return best


def httpx_json(url: str, limit: int) -> tuple[int, int, Any]:
    items: list[Any] = []
    nbytes = 0
    cont = None
    with httpx.Client(base_url=url, timeout=60) as c:
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cont:
                params["continue"] = cont
            r = c.get(PATH, params=params)
            nbytes += len(r.content)
            body = json.loads(r.content)
            items += body["items"]
            cont = body["metadata"].get("continue")
            if not cont:
                return len(items), nbytes, items


def kubernetes_client(url: str, limit: int) -> tuple[int, int, Any]:
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = url
    api = client.CoreV1Api(client.ApiClient(cfg))
    items: list[Any] = []
    cont = None
    while True:
        kw: dict[str, Any] = {"limit": limit}
        if cont:
            kw["_continue"] = cont
        page = api.list_config_map_for_all_namespaces(**kw)
        items += page.items
        cont = page.metadata._continue if page.metadata else None
        if not cont:
            return len(items), 0, items


def kfast_rest(url: str, limit: int) -> tuple[int, int, Any]:
    """The public REST client: ``ResourceClient.list`` pages through the collection and
    returns one list object whose items are plain dicts (each page decoded by msgspec)."""
    import kfast
    from kfast._gvk import APIResource

    cms = APIResource("", "v1", "configmaps", "ConfigMap", namespaced=True)
    with kfast.Client(kfast.Config.for_url(url)) as client:
        out = kfast.ResourceClient(client, cms).list(namespace=kfast.ALL_NAMESPACES, page_size=limit)
    items = out["items"]
    return len(items), 0, items


def kfast_wire(url: str, limit: int) -> tuple[int, int, Any]:
    """The informer's LIST path (``_wire.Wire.list_page``): pages decoded with msgspec.Raw
    into native StoredObjects (lazy: JSON bytes + metadata, decoded on access)."""
    from kfast._config import Config
    from kfast._wire import Wire

    wire = Wire(Config.for_url(url))
    items: list[Any] = []
    cont = None
    try:
        while True:
            params = {"limit": str(limit)}
            if cont:
                params["continue"] = cont
            page = wire.list_page(PATH, params)
            items += page.items
            cont = page.continue_token
            if not cont:
                return len(items), sum(o.nbytes for o in items), items
    finally:
        wire.close()


CONSUMERS: dict[str, tuple[str, Callable[[str, int], tuple[int, int, Any]], str]] = {
    "httpx": (BASELINE, httpx_json, ""),
    "kubernetes": ("kubernetes list_config_map_for_all_namespaces", kubernetes_client,
                   "V1ConfigMap models"),
    "kfast-rest": ("kfast ResourceClient.list (REST client)", kfast_rest, "plain dicts, like json.loads"),
    "kfast-wire": ("kfast informer LIST path (Wire.list_page)", kfast_wire,
                   "lazy StoredObjects (JSON bytes + metadata)"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--objects", type=int, default=10_000)
    p.add_argument("--limit", type=int, default=500)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.add_argument("--only", choices=sorted(CONSUMERS), help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.only:
        name, fn, note = CONSUMERS[args.only]
        emit(_best(name, lambda: fn(args.url, args.limit), args.repeat, note))
        return
    common = ["--limit", str(args.limit), "--repeat", str(args.repeat)]
    with SimulatorProcess(configmaps=args.objects) as sim:
        stats = sim.stats("configmaps")
        by_key = {key: run_isolated(__file__, ["--only", key, "--url", sim.url, *common])
                  for key in CONSUMERS}
        rows = list(by_key.values())
    for r in rows:
        if not r.nbytes and not r.pending:
            r.nbytes = rows[0].nbytes  # same bytes on the wire as the baseline read
    for r in rows:
        if not r.pending and r.items != stats.objects:
            r.note = f"WRONG: {r.items:,} objects, not {stats.objects:,}. {r.note}"
    print_table(f"list: {stats.objects:,} ConfigMaps (mean {stats.mean_object_bytes:,.0f} B), "
                f"limit={args.limit}, best of {args.repeat}; memory: RSS growth of a fresh "
                "process holding the result (first run)", rows, BASELINE, unit="objects/s",
                as_json=args.json)
    if not args.json:
        k8s, rest = by_key.get("kubernetes"), by_key.get("kfast-rest")
        if k8s and rest and k8s.seconds and rest.seconds and not (k8s.pending or rest.pending):
            print(f"  kfast ResourceClient.list vs the kubernetes client: {k8s.seconds / rest.seconds:.1f}x "
                  f"faster (target >= 3x); load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
