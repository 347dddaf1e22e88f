"""Paged lists and watches of the resource clients against a real kube-apiserver, sync and
async: pagination over more objects than a page, an expired continue token (etcd compaction
on a cluster without watch cache, apiserver.md section 6), ordered watch events, resuming
after the server ends a watch, metadata-only watches, 410 on a too old resourceVersion,
streaming lists, and stop() while a read is blocked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kube_http import configmap, create, new_namespace
from rest_modes import CONFIGMAPS, clients, cm, close, config, modes, names, on_response, run, take, v

from kfast import ALL_NAMESPACES, errors
from kfast.testing import ADMIN, Cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def nocache(cluster: Cluster) -> Iterator[Cluster]:
    """Lists served by etcd itself: after a compaction a continue token fails at once
    (with the watch cache, continuations may be served from its snapshots for a while)."""
    other = cluster.start_second_cluster(["--watch-cache=false"])
    yield other
    other.stop()


def fill(admin: httpx.Client, ns: str, n: int) -> list[str]:
    out = [f"cm-{i:02d}" for i in range(n)]
    for name in out:
        create(admin, f"/api/v1/namespaces/{ns}/configmaps", configmap(name, i=name))
    return out


@modes
def test_pagination_over_more_than_one_page(mode: str, cluster: Cluster, admin: httpx.Client,
                                            namespace: str) -> None:
    expected = fill(admin, namespace, 25)

    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            seen: list[Any] = []
            on_response(make, seen.append)
            cms = make(CONFIGMAPS)
            out = await v(cms.list(page_size=10))
            assert names(out["items"]) == expected and out["kind"] == "ConfigMapList"
            assert "continue" not in out["metadata"] and out["metadata"]["resourceVersion"]
            assert [r.request.url.params.get("limit") for r in seen] == ["10"] * 3
            assert [bool(r.request.url.params.get("continue")) for r in seen] == [False, True, True]
            seen.clear()
            items = await take(cms.iter_list(page_size=10, label_selector="!absent"))
            assert names(items) == expected and len(seen) == 3
            # Across namespaces, with a field selector, unpaged.
            everywhere = await v(cms.list(namespace=ALL_NAMESPACES, field_selector="metadata.name=cm-07",
                                          page_size=None))
            pairs = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]]
            assert (namespace, "cm-07") in pairs and {n for _, n in pairs} == {"cm-07"}
    run(scenario())


@modes
def test_list_page_returns_one_page_and_its_continue_token(mode: str, cluster: Cluster, admin: httpx.Client,
                                                           namespace: str) -> None:
    expected = fill(admin, namespace, 12)

    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            seen: list[Any] = []
            on_response(make, seen.append)
            cms = make(CONFIGMAPS)
            first = await v(cms.list_page(limit=1))
            assert names(first["items"]) == expected[:1] and len(seen) == 1
            assert first["metadata"]["continue"] and first["metadata"]["remainingItemCount"] == 11
            rest = await v(cms.list_page(limit=20, continue_token=first["metadata"]["continue"]))
            assert names(rest["items"]) == expected[1:] and "continue" not in rest["metadata"]
            assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
            assert len(seen) == 2
    run(scenario())


@modes
def test_expired_continue_token_falls_back_to_a_full_list(mode: str, nocache: Cluster) -> None:
    with nocache.client(ADMIN) as admin:
        ns = new_namespace(admin, "r")
        fill(admin, ns, 25)

        def compact_after_first_page(resp: Any) -> None:
            if resp.request.url.params.get("continue") or compacted:
                return
            # Meanwhile: one object before the point reached, one after; then compaction.
            create(admin, f"/api/v1/namespaces/{ns}/configmaps", configmap("cm-00a"))
            create(admin, f"/api/v1/namespaces/{ns}/configmaps", configmap("zz-late"))
            compacted.append(nocache.compact_etcd())

        async def scenario() -> None:
            async with clients(mode, config(nocache, ns)) as make:
                cms = make(CONFIGMAPS)
                statuses: list[tuple[int, bool, str | None]] = []
                on_response(make, lambda r: statuses.append(
                    (r.status_code, bool(r.request.url.params.get("continue")), r.request.url.params.get("limit"))))
                on_response(make, compact_after_first_page)
                out = await v(cms.list(page_size=10))
                # The paged list expired; the answer is one full list (newer snapshot).
                assert statuses == [(200, False, "10"), (410, True, "10"), (200, False, None)]
                assert names(out["items"]) == sorted([f"cm-{i:02d}" for i in range(25)] + ["cm-00a", "zz-late"])
                for name in ("cm-00a", "zz-late"):
                    admin.delete(f"/api/v1/namespaces/{ns}/configmaps/{name}")
                compacted.clear()
                statuses.clear()
                items = await take(cms.iter_list(page_size=10))
                assert statuses == [(200, False, "10"), (410, True, "10"), (200, False, None)]
                got = names(items)
                # Each key at most once, in order: the first page, then the rest of the
                # full list after cm-09 (cm-00a was created before that point: not yielded).
                assert got == [f"cm-{i:02d}" for i in range(25)] + ["zz-late"]
        compacted: list[int] = []
        run(scenario())


@modes
def test_watch_sees_create_modify_delete_in_order(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            cms = make(CONFIGMAPS)
            rv = (await v(cms.list()))["metadata"]["resourceVersion"]
            await v(cms.create(cm("w", k="1")))
            await v(cms.patch("w", {"data": {"k": "2"}}))
            await v(cms.delete("w"))
            w = cms.watch(resource_version=rv, timeout_seconds=20)
            try:
                events = [e for e in await take(w, 3)]
            finally:
                await close(w)
            assert [(e.type, e.object["metadata"]["name"]) for e in events] == \
                [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
            assert events[1].object["data"] == {"k": "2"}
            assert w.resource_version == events[2].object["metadata"]["resourceVersion"]
            assert w.end_reason == "stopped"
    run(scenario())


@modes
def test_watch_resumes_after_server_timeouts_without_losing_events(mode: str, cluster: Cluster,
                                                                   namespace: str) -> None:
    def writer() -> None:
        with cluster.client(ADMIN) as admin:
            for i in range(4):
                time.sleep(1.5)
                create(admin, f"/api/v1/namespaces/{namespace}/configmaps", configmap(f"e{i}"))

    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            cms = make(CONFIGMAPS)
            rv = (await v(cms.list()))["metadata"]["resourceVersion"]
            # Each request ends after 2 s (server side); the watch as a whole after 9 s.
            w = cms.watch(resource_version=rv, timeout_seconds=9, server_timeout_seconds=2,
                          yield_bookmarks=True)
            t = threading.Thread(target=writer)
            started = time.monotonic()
            t.start()
            try:
                events = await take(w)  # to its end
            finally:
                t.join()
            elapsed = time.monotonic() - started
            added = [e.object["metadata"]["name"] for e in events if e.type == "ADDED"]
            assert added == ["e0", "e1", "e2", "e3"]  # each once, in order
            assert {e.type for e in events} <= {"ADDED", "BOOKMARK"}
            assert w.end_reason == "timeout" and 8 <= elapsed < 15, elapsed
            assert w._state.requests_opened >= 4  # resumed several times
            assert w.resource_version == events[-1].object["metadata"]["resourceVersion"]
    run(scenario())


@modes
def test_metadata_only_watch_and_initial_events(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            cms = make(CONFIGMAPS)
            for n in ("a", "b"):
                await v(cms.create(cm(n, payload="x" * 500)))
            meta = make(CONFIGMAPS, metadata_only=True)
            w = meta.watch(send_initial_events=True, timeout_seconds=20, yield_bookmarks=True)
            try:
                first = await take(w, 3)
                await v(cms.patch("a", {"data": {"payload": "y"}}))
                later = await take(w, 1)
            finally:
                await close(w)
            assert [(e.type, e.object["metadata"]["name"] if e.type != "BOOKMARK" else "")
                    for e in first] == [("ADDED", "a"), ("ADDED", "b"), ("BOOKMARK", "")]
            assert first[2].object["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
            assert all(e.object["kind"] == "PartialObjectMetadata" and "data" not in e.object
                       for e in first[:2])
            assert later[0].type == "MODIFIED" and later[0].object["kind"] == "PartialObjectMetadata"
            assert later[0].object["metadata"]["name"] == "a"
    run(scenario())


@modes
def test_bookmarks_are_hidden_by_default(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            cms = make(CONFIGMAPS)
            for n in ("a", "b"):
                await v(cms.create(cm(n)))
            # The server sends the initial-events-end bookmark after a and b: not yielded.
            w = cms.watch(send_initial_events=True, timeout_seconds=20)
            try:
                first = await take(w, 2)
                await v(cms.patch("a", {"data": {"k": "y"}}))
                later = await take(w, 1)
            finally:
                await close(w)
            # The README's loop works on every event.
            assert [(e.type, e.object["metadata"]["name"]) for e in first + later] == \
                [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a")]
            assert w._state.initial_events_done  # the bookmark was seen, only not yielded
            assert w.resource_version == later[0].object["metadata"]["resourceVersion"]
    run(scenario())


@modes
def test_watch_from_a_too_old_resource_version_is_expired(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            w = make(CONFIGMAPS).watch(resource_version="1", timeout_seconds=10)
            with pytest.raises(errors.Expired) as ei:
                await take(w)
            assert ei.value.code == 410 and "too old resource version" in ei.value.message
    run(scenario())


@modes
def test_stop_wakes_a_blocked_watch(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            w = make(CONFIGMAPS).watch(allow_bookmarks=False)  # nothing will arrive
            timer = threading.Timer(1.0, w.stop)
            started = time.monotonic()
            timer.start()
            try:
                events = await take(w)
            finally:
                timer.cancel()
            assert events == [] and w.end_reason == "stopped"
            assert time.monotonic() - started < 5
            # The client is still usable afterwards.
            assert (await v(make(CONFIGMAPS).list()))["items"] == []
    run(scenario())
