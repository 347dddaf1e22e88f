"""The simulated API server: list pagination, watch wire format, WatchList, mutations, faults.

Watch bodies are read with a strict hand-written HTTP/1.1 chunk parser over a plain socket,
so these tests check the real framing, not what an HTTP library makes of it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from kfast.simulator import Simulator


@dataclass
class WatchResponse:
    status: int
    headers: dict[str, str]
    chunks: list[bytes] = field(default_factory=list)
    ended: bool = False  # the terminating 0-length chunk arrived
    eof_mid_chunk: bool = False

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(c) for c in self.chunks if c.strip()]


class RawWatch:
    """A watch read chunk by chunk, strictly per RFC 9112 (no library in between)."""

    def __init__(self, sim: Simulator, path: str, **params: Any) -> None:
        host, port = sim.url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        q = urlencode({"watch": "true", **params})
        self.sock.sendall(f"GET {path}?{q} HTTP/1.1\r\nHost: sim\r\n\r\n".encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.resp = WatchResponse(int(lines[0].split()[1]),
                                  {k.lower(): v.strip() for k, v in
                                   (ln.split(":", 1) for ln in lines[1:] if ln)})

    def _fill(self) -> bool:
        data = self.sock.recv(1 << 16)
        self.buf += data
        return bool(data)

    def _until(self, sep: bytes) -> bytes:
        while sep not in self.buf:
            if not self._fill():
                raise EOFError
        out, self.buf = self.buf.split(sep, 1)
        return out

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def next_chunk(self) -> bytes | None:
        """The next chunk's payload; None at the terminating chunk."""
        size = int(self._until(b"\r\n"), 16)
        if size == 0:
            assert self._exactly(2) == b"\r\n"
            self.resp.ended = True
            return None
        payload = self._exactly(size)
        assert self._exactly(2) == b"\r\n", "chunk not followed by CRLF"
        self.resp.chunks.append(payload)
        return payload

    def events(self, n: int) -> list[dict[str, Any]]:
        out = []
        while len(out) < n:
            c = self.next_chunk()
            assert c is not None, f"stream ended after {len(out)} of {n} events"
            out.append(json.loads(c))
        return out

    def read_to_end(self) -> WatchResponse:
        try:
            while self.next_chunk() is not None:
                pass
        except EOFError:
            self.resp.eof_mid_chunk = bool(self.buf)
        return self.resp

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(pods=1200, configmaps=300, seed=3, bookmark_interval=0.2) as s:
        yield s


def list_all(client: httpx.Client, path: str, **params: Any) -> tuple[list[dict[str, Any]], set[str]]:
    items: list[dict[str, Any]] = []
    rvs: set[str] = set()
    cont = None
    while True:
        p = dict(params, **({"continue": cont} if cont else {}))
        r = client.get(path, params=p)
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        rvs.add(body["metadata"]["resourceVersion"])
        cont = body["metadata"].get("continue")
        if not cont:
            return items, rvs


def key(obj: dict[str, Any]) -> str:
    return f'{obj["metadata"]["namespace"]}/{obj["metadata"]["name"]}'


# ----------------------------------------------------------------------------------- list


def test_list_pagination_is_consistent_and_complete(sim: Simulator) -> None:
    with httpx.Client(base_url=sim.url) as c:
        first = c.get("/api/v1/pods", params={"limit": 500}).json()
        assert first["kind"] == "PodList" and len(first["items"]) == 500
        assert first["metadata"]["remainingItemCount"] == 700
        list_rv = first["metadata"]["resourceVersion"]
        assert list_rv == sim.resource_version == "1500"
        # A change between pages must not show up in later pages of the same list.
        last_key = sim.keys()[-1]
        sim.update("pods", last_key)
        items = list(first["items"])
        cont = first["metadata"]["continue"]
        pages = 1
        while cont:
            page = c.get("/api/v1/pods", params={"limit": 500, "continue": cont}).json()
            assert page["metadata"]["resourceVersion"] == list_rv
            items += page["items"]
            cont = page["metadata"].get("continue")
            pages += 1
    assert pages == 3
    keys = [key(o) for o in items]
    assert keys == sorted(set(keys)) and len(keys) == 1200
    by_key = {key(o): o["metadata"]["resourceVersion"] for o in items}
    assert int(by_key[last_key]) <= int(list_rv)
    assert sim.state()[last_key] == "1501"


def test_pods_are_realistic_and_deterministic(sim: Simulator) -> None:
    with httpx.Client(base_url=sim.url) as c:
        raw = c.get("/api/v1/pods", params={"limit": 50}).content
        pod = json.loads(raw)["items"][0]
    with Simulator(pods=1200, configmaps=300, seed=3) as other, \
            httpx.Client(base_url=other.url) as c2:
        assert c2.get("/api/v1/pods", params={"limit": 50}).content == raw
    meta = pod["metadata"]
    assert meta["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert meta["ownerReferences"][0]["controller"] is True
    applied = json.loads(meta["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert applied["kind"] == "Deployment"
    assert meta["managedFields"][0]["manager"] == "kube-controller-manager"
    ctr = pod["spec"]["containers"][0]
    assert {"image", "ports", "env", "resources", "volumeMounts"} <= set(ctr)
    assert pod["spec"]["nodeName"].endswith(".ec2.internal")
    assert pod["status"]["podIP"] and pod["status"]["conditions"]
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    sizes = [len(json.dumps(o, separators=(",", ":"))) for o in json.loads(raw)["items"]]
    assert 4000 < sum(sizes) / len(sizes) < 6500
    st = sim.state()
    assert len({k.split("/")[0] for k in st}) >= 10


def test_namespace_and_label_selector(sim: Simulator) -> None:
    with httpx.Client(base_url=sim.url) as c:
        ns_items, _ = list_all(c, "/api/v1/namespaces/payments/pods", limit=40)
        assert ns_items and all(o["metadata"]["namespace"] == "payments" for o in ns_items)
        assert len(ns_items) == sum(1 for k in sim.state() if k.startswith("payments/"))
        app = ns_items[0]["metadata"]["labels"]["app"]
        sel, _ = list_all(c, "/api/v1/pods", labelSelector=f"app={app},team=payments", limit=7)
        assert sel and all(o["metadata"]["labels"]["app"] == app for o in sel)
        assert {key(o) for o in sel} == {key(o) for o in ns_items
                                          if o["metadata"]["labels"]["app"] == app}
        neg, _ = list_all(c, "/api/v1/pods", labelSelector="team!=payments")
        assert len(neg) == 1200 - len(ns_items)
        cms, rvs = list_all(c, "/api/v1/configmaps", limit=100)
        assert len(cms) == 300 and len(rvs) == 1 and cms[0]["kind"] == "ConfigMap"
        one = c.get(f"/api/v1/namespaces/payments/pods/{ns_items[0]['metadata']['name']}")
        assert one.status_code == 200 and one.json() == ns_items[0]
        missing = c.get("/api/v1/namespaces/payments/pods/nope")
        assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"


def test_expired_continue_token_is_410_with_fresh_token(sim: Simulator) -> None:
    with httpx.Client(base_url=sim.url) as c:
        first = c.get("/api/v1/pods", params={"limit": 500}).json()
        sim.expire_continue_tokens()
        r = c.get("/api/v1/pods", params={"limit": 500, "continue": first["metadata"]["continue"]})
        assert r.status_code == 410
        st = r.json()
        assert (st["kind"], st["code"], st["reason"]) == ("Status", 410, "Expired")
        fresh = st["metadata"]["continue"]
        rest, _ = list_all(c, "/api/v1/pods", limit=500, **{"continue": fresh})
        assert len(rest) == 700
        assert key(rest[0]) > key(first["items"][-1])


# ---------------------------------------------------------------------------------- watch


def test_watch_is_one_chunk_per_event(sim: Simulator) -> None:
    rv = sim.resource_version
    sim.release_churn(sim.prepare_churn("pods", 300))
    w = RawWatch(sim, "/api/v1/pods", resourceVersion=rv, timeoutSeconds=1)
    resp = w.read_to_end()
    assert resp.status == 200
    assert resp.headers["transfer-encoding"] == "chunked"
    assert resp.headers["content-type"] == "application/json"
    assert resp.ended and len(resp.chunks) == 300
    assert all(c.endswith(b"\n") and c.count(b"\n") == 1 for c in resp.chunks)
    evs = resp.events
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
    assert rvs == list(range(int(rv) + 1, int(rv) + 301))
    assert {e["type"] for e in evs} == {"ADDED", "MODIFIED", "DELETED"}
    # Replaying the events over the listed state gives the simulator's final state.
    state = {k: v for k, v in sim.store.state("pods").items() if int(v) <= int(rv)}
    for e in evs:
        k = key(e["object"])
        if e["type"] == "DELETED":
            state.pop(k, None)
        else:
            state[k] = e["object"]["metadata"]["resourceVersion"]
    assert state == sim.state()


def test_watch_namespace_filter(sim: Simulator) -> None:
    rv = sim.resource_version
    sim.release_churn(sim.prepare_churn("pods", 400))
    resp = RawWatch(sim, "/api/v1/namespaces/payments/pods", resourceVersion=rv,
                    timeoutSeconds=1).read_to_end()
    assert resp.events and all(e["object"]["metadata"]["namespace"] == "payments"
                               for e in resp.events)


def test_bookmarks_only_when_asked(sim: Simulator) -> None:
    rv = sim.resource_version
    with_bm = RawWatch(sim, "/api/v1/pods", resourceVersion=rv, allowWatchBookmarks="true",
                       timeoutSeconds=1).read_to_end()
    bms = [e for e in with_bm.events if e["type"] == "BOOKMARK"]
    assert len(bms) >= 3  # every 0.2 s plus one before the end
    assert all(e["object"]["metadata"]["resourceVersion"] == rv for e in bms)
    assert bms[0]["object"]["kind"] == "Pod"
    without = RawWatch(sim, "/api/v1/pods", resourceVersion=rv, timeoutSeconds=1).read_to_end()
    assert without.ended and without.chunks == []


def test_old_resource_version_gets_410_event(sim: Simulator) -> None:
    old = sim.resource_version
    sim.update("pods", sim.keys()[0])
    sim.compact()
    resp = RawWatch(sim, "/api/v1/pods", resourceVersion=old).read_to_end()
    assert resp.status == 200 and resp.ended
    [ev] = resp.events
    assert ev["type"] == "ERROR"
    assert (ev["object"]["code"], ev["object"]["reason"]) == (410, "Expired")
    # The current RV is still fine after compaction.
    ok = RawWatch(sim, "/api/v1/pods", resourceVersion=sim.resource_version, timeoutSeconds=0.3)
    assert ok.read_to_end().events == []


def test_history_window_expires_old_rvs() -> None:
    with Simulator(pods=10, history_limit=5) as s:
        start = s.resource_version
        for _ in range(8):
            s.update("pods", s.keys()[0])
        resp = RawWatch(s, "/api/v1/pods", resourceVersion=start).read_to_end()
        assert resp.events[0]["object"]["reason"] == "Expired"
        recent = RawWatch(s, "/api/v1/pods", resourceVersion=int(start) + 4,
                          timeoutSeconds=0.3).read_to_end()
        assert len(recent.events) == 4


def test_watch_list_initial_events_then_end_bookmark(sim: Simulator) -> None:
    w = RawWatch(sim, "/api/v1/configmaps", sendInitialEvents="true",
                 resourceVersionMatch="NotOlderThan", allowWatchBookmarks="true",
                 resourceVersion="")
    evs = w.events(301)
    assert [e["type"] for e in evs[:300]] == ["ADDED"] * 300
    assert {key(e["object"]) for e in evs[:300]} == set(sim.state("configmaps"))
    end = evs[300]
    assert end["type"] == "BOOKMARK"
    assert end["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert end["object"]["metadata"]["resourceVersion"] == sim.resource_version
    # ... then it carries on as a normal watch on the same connection.
    created = sim.create("configmaps", {"metadata": {"name": "late", "namespace": "default"},
                                        "data": {"a": "b"}})
    [ev] = w.events(1)
    assert ev["type"] == "ADDED" and ev["object"] == created
    w.close()


def test_watch_list_needs_rv_match_and_feature(sim: Simulator) -> None:
    r = RawWatch(sim, "/api/v1/pods", sendInitialEvents="true", allowWatchBookmarks="true")
    assert r.resp.status == 422
    with Simulator(pods=5, watch_list=False) as old:
        r = RawWatch(old, "/api/v1/pods", sendInitialEvents="true",
                     resourceVersionMatch="NotOlderThan", allowWatchBookmarks="true")
        assert r.resp.status == 422


def test_mutations_reach_open_watches(sim: Simulator) -> None:
    w = RawWatch(sim, "/api/v1/pods", resourceVersion=sim.resource_version)
    assert sim.wait_for_watches(1)
    obj = sim.create("pods", {"metadata": {"name": "p1", "namespace": "default",
                                           "labels": {"app": "x"}}, "spec": {}})
    upd = sim.update("pods", "default/p1", lambda o: o["metadata"]["labels"].update(app="y"))
    gone = sim.delete("pods", "default/p1")
    evs = w.events(3)
    assert [e["type"] for e in evs] == ["ADDED", "MODIFIED", "DELETED"]
    assert evs[0]["object"] == obj and evs[1]["object"] == upd
    assert evs[1]["object"]["metadata"]["labels"]["app"] == "y"
    assert [int(e["object"]["metadata"]["resourceVersion"]) for e in evs] == [1501, 1502, 1503]
    assert gone["metadata"]["resourceVersion"] == "1503"
    assert "default/p1" not in sim.state()
    w.close()


def test_paced_churn_is_delivered_live(sim: Simulator) -> None:
    rv = sim.resource_version
    w = RawWatch(sim, "/api/v1/pods", resourceVersion=rv)
    assert sim.wait_for_watches(1)
    t0 = time.monotonic()
    sim.release_churn(sim.prepare_churn("pods", 200), rate=1000)
    evs = w.events(200)
    assert time.monotonic() - t0 >= 0.15
    assert evs[-1]["object"]["metadata"]["resourceVersion"] == str(int(rv) + 200)
    w.close()


# --------------------------------------------------------------------------------- faults


def test_429_with_retry_after_and_500(sim: Simulator) -> None:
    sim.fail_next_requests(429, verb="list", retry_after=3, count=2)
    sim.fail_next_requests(500, verb="watch")
    with httpx.Client(base_url=sim.url) as c:
        for _ in range(2):
            r = c.get("/api/v1/pods", params={"limit": 1})
            assert r.status_code == 429 and r.headers["retry-after"] == "3"
            st = r.json()
            assert (st["reason"], st["details"]["retryAfterSeconds"]) == ("TooManyRequests", 3)
        assert c.get("/api/v1/pods", params={"limit": 1}).status_code == 200
    w = RawWatch(sim, "/api/v1/pods", resourceVersion=sim.resource_version)
    assert w.resp.status == 500
    assert [r.status for r in sim.requests[-4:]] == [429, 429, 200, 500]


def test_410_as_http_status_of_a_watch(sim: Simulator) -> None:
    sim.fail_next_requests(410, verb="watch", reason="Expired")
    w = RawWatch(sim, "/api/v1/pods", resourceVersion="1")
    assert w.resp.status == 410
    body = w._exactly(int(w.resp.headers["content-length"]))
    assert json.loads(body)["reason"] == "Expired"


def test_close_mid_line(sim: Simulator) -> None:
    rv = sim.resource_version
    sim.release_churn(sim.prepare_churn("pods", 10))
    sim.fail_next_watch("close_mid_line", after_events=4)
    resp = RawWatch(sim, "/api/v1/pods", resourceVersion=rv).read_to_end()
    assert not resp.ended and not resp.eof_mid_chunk
    assert len(resp.chunks) == 5
    assert all(c.endswith(b"\n") for c in resp.chunks[:4])
    assert not resp.chunks[4].endswith(b"\n")
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.chunks[4])


def test_close_mid_chunk(sim: Simulator) -> None:
    rv = sim.resource_version
    sim.release_churn(sim.prepare_churn("pods", 3))
    sim.fail_next_watch("close_mid_chunk", after_events=2)
    resp = RawWatch(sim, "/api/v1/pods", resourceVersion=rv).read_to_end()
    assert len(resp.chunks) == 2 and not resp.ended and resp.eof_mid_chunk


def test_malformed_line_then_stream_goes_on(sim: Simulator) -> None:
    rv = sim.resource_version
    sim.release_churn(sim.prepare_churn("pods", 4))
    sim.fail_next_watch("malformed", after_events=2)
    resp = RawWatch(sim, "/api/v1/pods", resourceVersion=rv, timeoutSeconds=0.5).read_to_end()
    assert len(resp.chunks) == 5 and resp.ended
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.chunks[2])
    assert json.loads(resp.chunks[3])["type"] in ("ADDED", "MODIFIED", "DELETED")


def test_break_open_watches_with_410(sim: Simulator) -> None:
    watches = [RawWatch(sim, "/api/v1/pods", resourceVersion=sim.resource_version)
               for _ in range(2)]
    assert sim.wait_for_watches(2)
    assert sim.break_open_watches("expired") == 2
    for w in watches:
        resp = w.read_to_end()
        assert resp.ended
        assert resp.events[-1]["type"] == "ERROR"
        assert resp.events[-1]["object"]["code"] == 410
    deadline = time.monotonic() + 2
    while sim.open_watches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.open_watches == 0


def test_stop_ends_open_watches() -> None:
    s = Simulator(pods=5).start()
    w = RawWatch(s, "/api/v1/pods", resourceVersion=s.resource_version,
                 allowWatchBookmarks="true")
    assert s.wait_for_watches(1)
    done = threading.Event()
    result: list[WatchResponse] = []
    t = threading.Thread(target=lambda: (result.append(w.read_to_end()), done.set()))
    t.start()
    s.stop()
    assert done.wait(5)
    assert result[0].ended
    assert result[0].events[-1]["type"] == "BOOKMARK"


def test_watch_from_rv_0_starts_with_synthetic_adds(sim: Simulator) -> None:
    w = RawWatch(sim, "/api/v1/namespaces/payments/pods", watch="1", resourceVersion="0")
    n = sum(1 for k in sim.state() if k.startswith("payments/"))
    evs = w.events(n)
    assert {e["type"] for e in evs} == {"ADDED"}
    assert {key(e["object"]) for e in evs} == {k for k in sim.state() if k.startswith("payments/")}
    assert sim.wait_for_watches(1)
    sim.update("pods", evs[0]["object"]["metadata"]["namespace"] + "/"
               + evs[0]["object"]["metadata"]["name"])
    [ev] = w.events(1)
    assert ev["type"] == "MODIFIED" and ev["object"]["metadata"]["resourceVersion"] == "1501"
    w.close()


def test_simulator_process_round_trip() -> None:
    from kfast.simulator._process import SimulatorProcess

    with SimulatorProcess(pods=50, seed=3) as sp:
        stats = sp.stats("pods")
        assert stats.objects == 50 and stats.resource_version == "50"
        info = sp.prepare_churn("pods", 20, updates=1.0, deletes=0.0)
        assert (info.first_rv, info.last_rv, info.events) == ("51", "70", 20)
        assert not info.last_is_delete
        sp.release_churn()
        state = sp.state("pods")
        assert state[info.last_key] == "70" and len(state) == 50
        with httpx.Client(base_url=sp.url) as c:
            assert len(c.get("/api/v1/pods").json()["items"]) == 50
        assert sp.requests()[-1] == ("list", 200)


def test_idle_watch_of_a_departed_client_is_closed(sim: Simulator) -> None:
    w = RawWatch(sim, "/api/v1/pods", resourceVersion=sim.resource_version)
    assert sim.wait_for_watches(1)
    w.close()
    deadline = time.monotonic() + 3
    while sim.open_watches and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.open_watches == 0


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_get_a_405_status_not_an_html_page(sim: Simulator, method: str) -> None:
    from kfast import Client, Config, errors

    with httpx.Client(base_url=sim.url) as c:
        r = c.request(method, "/api/v1/namespaces/default/configmaps/x", json={"metadata": {"name": "x"}})
        assert r.status_code == 405 and r.headers["content-type"] == "application/json"
        st = r.json()
        assert (st["kind"], st["code"], st["reason"], st["status"]) == ("Status", 405, "MethodNotAllowed", "Failure")
        assert method in st["message"]
        # the body was drained: the same connection serves the next request
        assert c.get("/version").json()["gitVersion"].endswith("kfast-sim")
    with Client(Config.for_url(sim.url)) as k:
        with pytest.raises(errors.MethodNotAllowed) as ei:
            k.request(method, "/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "y"}})
        assert ei.value.code == 405 and ei.value.reason == "MethodNotAllowed"
    assert sim.requests[-1].status == 405 and sim.requests[-1].method == method
