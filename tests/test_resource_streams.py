"""Paged lists (incl. the expired-continue fallback) and watches (decoding split bodies,
resuming, ending, errors) of the resource clients, over httpx.MockTransport, through both
drivers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from _rest_mock import CONFIGMAPS, call, chunked, cm, config, ev, modes, recorder, status

from kfast import ALL_NAMESPACES, WatchEvent, errors
from kfast._client import Client
from kfast._resource import ResourceClient
from kfast._gvk import APIResource
from kfast._rest_core import RestRequests
from kfast._watch import WatchState


def page(items: list[dict[str, Any]], rv: str = "100", cont: str | None = None) -> httpx.Response:
    meta: dict[str, Any] = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
        meta["remainingItemCount"] = 9
    return httpx.Response(200, json={"kind": "ConfigMapList", "apiVersion": "v1", "metadata": meta,
                                     "items": items})


def bookmark(rv: str, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": rv}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return ev("BOOKMARK", {"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta})


# -- lists ------------------------------------------------------------------------------------


@modes
def test_list_follows_continue_and_merges(mode: str) -> None:
    def answer(req: httpx.Request) -> httpx.Response:
        token = req.url.params.get("continue")
        if token is None:
            return page([cm("a", "1"), cm("b", "2")], cont="t1")
        if token == "t1":
            return page([cm("c", "3"), cm("d", "4")], cont="t2")
        return page([cm("e", "5")])

    seen, handler = recorder(answer)
    out = call(mode, handler, "list", namespace=ALL_NAMESPACES, page_size=2, label_selector="app=x",
               resource_version="0", resource_version_match="NotOlderThan")
    assert out["kind"] == "ConfigMapList" and out["apiVersion"] == "v1"
    assert out["metadata"] == {"resourceVersion": "100"}  # no continue, no remainingItemCount
    assert [i["metadata"]["name"] for i in out["items"]] == ["a", "b", "c", "d", "e"]
    assert [r.url.path for r in seen] == ["/api/v1/configmaps"] * 3
    assert dict(seen[0].url.params) == {"labelSelector": "app=x", "limit": "2", "resourceVersion": "0",
                                        "resourceVersionMatch": "NotOlderThan"}
    # Continuations carry the token, not the resourceVersion (the server rejects both).
    assert dict(seen[1].url.params) == {"labelSelector": "app=x", "limit": "2", "continue": "t1"}
    assert dict(seen[2].url.params) == {"labelSelector": "app=x", "limit": "2", "continue": "t2"}


@modes
def test_unpaged_list(mode: str) -> None:
    seen, handler = recorder(lambda r: page([cm("a", "1")]))
    out = call(mode, handler, "list", page_size=None)
    assert [i["metadata"]["name"] for i in out["items"]] == ["a"]
    assert "limit" not in seen[0].url.params and seen[0].url.path == "/api/v1/namespaces/team/configmaps"


def expiring(first_rv: str = "5") -> tuple[list[httpx.Request], Any]:
    """Page 1 (a, b), then the continue token has expired; the full list (at the requested RV)
    has b changed, a1 created before the break point, c and d after it."""
    def answer(req: httpx.Request) -> httpx.Response:
        if req.url.params.get("continue") == "t1":
            return status(410, "Expired", "The provided continue parameter is too old",
                          metadata={"continue": "fresh-inconsistent-token"})
        if "limit" not in req.url.params:
            return page([cm("a", "1"), cm("a1", "7"), cm("b", "8"), cm("c", "3"), cm("d", "9")], rv="200")
        return page([cm("a", "1"), cm("b", "2")], rv="100", cont="t1")

    return recorder(answer)


@modes
def test_list_falls_back_to_one_full_list_when_the_continue_token_expired(mode: str) -> None:
    seen, handler = expiring()
    out = call(mode, handler, "list", page_size=2, resource_version="5", resource_version_match="NotOlderThan")
    assert out["metadata"]["resourceVersion"] == "200"
    assert [i["metadata"]["name"] for i in out["items"]] == ["a", "a1", "b", "c", "d"]
    assert len(seen) == 3
    # The fallback: no limit, no continue, the resourceVersion first asked for (client-go).
    assert dict(seen[2].url.params) == {"resourceVersion": "5", "resourceVersionMatch": "NotOlderThan"}


@modes
def test_iter_list_does_not_repeat_keys_after_the_fallback(mode: str) -> None:
    seen, handler = expiring()
    items = call(mode, handler, "iter_list", page_size=2)
    assert [(i["metadata"]["name"], i["metadata"]["resourceVersion"]) for i in items] == \
        [("a", "1"), ("b", "2"), ("c", "3"), ("d", "9")]
    assert len(seen) == 3


@modes
def test_iter_list_is_lazy_and_pages_on_demand(mode: str) -> None:
    seen, handler = recorder(lambda r: page([cm("a", "1"), cm("b", "2")], cont="t"))
    items = call(mode, handler, "iter_list", page_size=2, max_items=3)
    assert len(items) == 3 and len(seen) == 2


@modes
def test_an_expired_first_page_is_an_error(mode: str) -> None:
    _, handler = recorder(lambda r: status(410, "Expired", "too old resource version"))
    with pytest.raises(errors.Expired):
        call(mode, handler, "list", resource_version="3", resource_version_match="Exact")


@modes
def test_a_second_expiry_during_the_fallback_is_an_error(mode: str) -> None:
    def answer(req: httpx.Request) -> httpx.Response:
        if req.url.params.get("continue") or "limit" not in req.url.params:
            return status(410, "Expired", "too old")
        return page([cm("a", "1")], cont="t1")

    _, handler = recorder(answer)
    with pytest.raises(errors.Expired):
        call(mode, handler, "list", page_size=1)


# -- watches ----------------------------------------------------------------------------------


@modes
def test_watch_decodes_split_bodies_and_resumes_from_the_last_rv(mode: str) -> None:
    uni = cm("ü", "11", k="ẞ→✓")  # multi-byte characters to split
    body1 = ev("ADDED", cm("a", "10")) + b"\n" + ev("MODIFIED", uni) + bookmark("12")
    cut = body1.index("ẞ".encode()) + 1  # in the middle of a character
    chunks1 = [body1[:5], body1[5:cut], body1[cut:-3], body1[-3:]]
    body2 = ev("DELETED", cm("a", "13"))

    def answer(req: httpx.Request) -> httpx.Response:
        return chunked(chunks1 if len(seen) == 1 else [body2])

    seen, handler = recorder(answer)
    events = call(mode, handler, "watch", namespace="ns", label_selector="app=x", resource_version="9",
                  timeout_seconds=600, server_timeout_seconds=30, max_items=4, yield_bookmarks=True)
    assert [(e.type, e.object["metadata"]["resourceVersion"]) for e in events] == \
        [("ADDED", "10"), ("MODIFIED", "11"), ("BOOKMARK", "12"), ("DELETED", "13")]
    assert isinstance(events[0], WatchEvent) and events[1].object == uni
    assert events[2].object == {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": "12"}}
    assert [r.url.params["resourceVersion"] for r in seen] == ["9", "12"]  # resumed at the bookmark
    p = dict(seen[0].url.params)
    assert p == {"labelSelector": "app=x", "resourceVersion": "9", "timeoutSeconds": "30",
                 "allowWatchBookmarks": "true", "watch": "true"}
    assert seen[0].url.path == "/api/v1/namespaces/ns/configmaps"


@modes
def test_watch_hides_bookmarks_by_default_but_resumes_from_them(mode: str) -> None:
    body1 = ev("ADDED", cm("a", "10")) + bookmark("12")
    body2 = bookmark("14") + ev("MODIFIED", cm("a", "15")) + bookmark("16")

    def answer(req: httpx.Request) -> httpx.Response:
        return chunked([body1] if len(seen) == 1 else [body2])

    seen, handler = recorder(answer)
    events = call(mode, handler, "watch", resource_version="9", max_items=2)
    # The README's loop: every event has a whole object with a name.
    assert [(e.type, e.object["metadata"]["name"], e.object["metadata"]["resourceVersion"])
            for e in events] == [("ADDED", "a", "10"), ("MODIFIED", "a", "15")]
    assert seen[0].url.params["allowWatchBookmarks"] == "true"  # still asked for
    assert [r.url.params["resourceVersion"] for r in seen] == ["9", "12"]  # resumed at the bookmark


@modes
def test_watch_of_nothing_but_bookmarks_yields_nothing_and_keeps_the_rv(mode: str) -> None:
    seen, handler = recorder(lambda r: chunked([bookmark("7")]))
    events = call(mode, handler, "watch", resource_version="1", timeout_seconds=2)
    assert events == []
    assert len(seen) > 1 and all(r.url.params["resourceVersion"] == "7" for r in seen[1:])


def test_watch_resource_version_follows_hidden_bookmarks() -> None:
    body = ev("ADDED", cm("a", "10")) + bookmark("12")
    with Client(config(), transport=httpx.MockTransport(lambda r: chunked([body]))) as c:
        with ResourceClient(c, CONFIGMAPS).watch(resource_version="9") as w:
            first = next(iter(w))
            assert first.type == "ADDED" and first.object["metadata"]["resourceVersion"] == "10"
            # The bookmark in the same chunk was read with it: the resume point moved on.
            assert w.resource_version == "12"


@modes
@pytest.mark.parametrize("how", ["event", "http"])
def test_watch_expired_is_typed(mode: str, how: str) -> None:
    expired = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
               "message": "too old resource version: 1 (50)"}

    def answer(req: httpx.Request) -> httpx.Response:
        if how == "http":
            return httpx.Response(410, json=expired)
        return chunked([ev("ADDED", cm("a", "60")) + ev("ERROR", expired)])

    with pytest.raises(errors.Expired) as ei:
        call(mode, recorder(answer)[1], "watch", resource_version="1")
    assert ei.value.code == 410 and "too old" in ei.value.message


@modes
def test_watch_other_error_event_is_its_api_error(mode: str) -> None:
    st = {"kind": "Status", "code": 500, "reason": "InternalError", "message": "etcd went away"}
    _, handler = recorder(lambda r: chunked([ev("ERROR", st)]))
    with pytest.raises(errors.InternalError, match="etcd went away"):
        call(mode, handler, "watch", resource_version="5")


@modes
def test_watch_metadata_only_and_initial_events(mode: str) -> None:
    pom: dict[str, Any] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
           "metadata": {"name": "a", "namespace": "team", "resourceVersion": "3"}}

    def answer(req: httpx.Request) -> httpx.Response:
        if len(seen) == 1:
            return chunked([ev("ADDED", pom) + bookmark("4", initial_end=True)])
        return chunked([ev("MODIFIED", {**pom, "metadata": {**pom["metadata"], "resourceVersion": "5"}})])

    seen, handler = recorder(answer)
    events = call(mode, handler, "watch", metadata_only=True, send_initial_events=True, max_items=3,
                  yield_bookmarks=True)
    assert [e.type for e in events] == ["ADDED", "BOOKMARK", "MODIFIED"]
    assert events[1].object["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert seen[0].headers["Accept"].startswith("application/json;as=PartialObjectMetadata;")
    assert dict(seen[0].url.params)["sendInitialEvents"] == "true"
    assert dict(seen[0].url.params)["resourceVersionMatch"] == "NotOlderThan"
    assert dict(seen[0].url.params)["resourceVersion"] == ""
    # After the initial events, a resume is a plain watch from the last RV.
    assert "sendInitialEvents" not in seen[1].url.params and seen[1].url.params["resourceVersion"] == "4"


@modes
def test_watch_stop_inside_the_loop_ends_it_quietly(mode: str) -> None:
    body = b"".join(ev("ADDED", cm(f"o{i}", str(i))) for i in range(5))
    _, handler = recorder(lambda r: chunked([body]))
    def keep(rc: Any) -> None:
        orig = rc.watch

        def watch(**kw: Any) -> Any:
            return StopAfter(orig(**kw), 2)

        rc.watch = watch

    events = call(mode, handler, "watch", on_client=keep)
    assert [e.object["metadata"]["name"] for e in events] == ["o0", "o1"]


class StopAfter:
    """Wraps a Watch/AsyncWatch: calls stop() after ``n`` events, then keeps iterating."""

    def __init__(self, w: Any, n: int) -> None:
        self.w, self.n, self.count = w, n, 0

    def __iter__(self) -> Any:
        for e in self.w:
            self.count += 1
            yield e
            if self.count == self.n:
                self.w.stop()
        assert self.w.end_reason == "stopped"

    async def __aiter_impl(self) -> Any:
        async for e in self.w:
            self.count += 1
            yield e
            if self.count == self.n:
                self.w.stop()
        assert self.w.end_reason == "stopped"

    def __aiter__(self) -> Any:
        return self.__aiter_impl()

    def close(self) -> Any:
        return self.w.close()


def test_watch_state_ends_at_the_callers_timeout() -> None:
    now = [1000.0]
    with Client(_cfg(), transport=httpx.MockTransport(lambda r: httpx.Response(500))) as c:
        rq = RestRequests(c, CONFIGMAPS)
        st = WatchState(rq, "team", timeout_seconds=100, server_timeout_seconds=30, clock=lambda: now[0])
        req = st.next_request()
        assert req is not None and req.url.params["timeoutSeconds"] == "30"
        assert req.extensions["timeout"]["read"] == 90.0  # timeoutSeconds + margin
        now[0] += 80.5
        req = st.next_request()
        assert req is not None and req.url.params["timeoutSeconds"] == "20"  # ceil(19.5)
        now[0] += 19.2
        assert st.next_request() is None and st.end_reason == "timeout"
        with pytest.raises(ValueError, match="server_timeout_seconds"):
            WatchState(rq, "team", server_timeout_seconds=0)
        with pytest.raises(ValueError, match="allow_bookmarks"):
            WatchState(rq, "team", send_initial_events=True, allow_bookmarks=False)


@modes
def test_watch_over_a_short_timeout_ends_by_itself(mode: str) -> None:
    # Each request ends at once after a bookmark; the watch resumes until less than a
    # second of its 2 s is left.
    seen, handler = recorder(lambda r: chunked([bookmark("7")]))
    events = call(mode, handler, "watch", resource_version="1", timeout_seconds=2, yield_bookmarks=True)
    assert events and all(e.type == "BOOKMARK" for e in events)
    assert seen[0].url.params["timeoutSeconds"] == "2"
    assert len(seen) > 1 and all(r.url.params["resourceVersion"] == "7" for r in seen[1:])


@modes
def test_watch_that_keeps_ending_empty_backs_off(mode: str) -> None:
    seen, handler = recorder(lambda r: chunked([]))
    events = call(mode, handler, "watch", resource_version="1", timeout_seconds=2)
    assert events == []
    assert 3 <= len(seen) <= 8  # 0.1 + 0.2 + 0.4 + 0.8 ... s between the quick ends


def _cfg() -> Any:
    return config()


def test_scope_unknown_resources_watch_without_namespace() -> None:
    res = APIResource("example.com", "v1", "widgets", "Widget")
    with Client(_cfg(), transport=httpx.MockTransport(lambda r: httpx.Response(500))) as c:
        st = WatchState(RestRequests(c, res), None, resource_version="3")
        req = st.next_request()
        assert req is not None and req.url.path == "/apis/example.com/v1/widgets"


@modes
def test_list_page_is_one_request_answered_as_sent(mode: str) -> None:
    page = {"kind": "ConfigMapList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "40", "continue": "tok1", "remainingItemCount": 7},
            "items": [cm("a", "3")]}
    seen, handler = recorder(lambda r: httpx.Response(200, json=page))
    out = call(mode, handler, "list_page", limit=1, label_selector="app=x", resource_version="0")
    assert out == page  # continue and remainingItemCount kept
    (req,) = seen
    assert dict(req.url.params) == {"limit": "1", "labelSelector": "app=x", "resourceVersion": "0"}
    seen2, handler2 = recorder(lambda r: httpx.Response(200, json={**page, "metadata": {"resourceVersion": "40"}}))
    out2 = call(mode, handler2, "list_page", limit=1, continue_token="tok1", namespace=ALL_NAMESPACES)
    assert out2["metadata"] == {"resourceVersion": "40"}
    (req2,) = seen2
    assert req2.url.path == "/api/v1/configmaps"
    assert dict(req2.url.params) == {"limit": "1", "continue": "tok1"}


@modes
def test_list_page_option_checks(mode: str) -> None:
    def never(req: httpx.Request) -> httpx.Response:
        raise AssertionError("no request")

    for bad in (0, -1, None, True, 2.5):
        with pytest.raises(ValueError, match="limit must be a positive int"):
            call(mode, never, "list_page", limit=bad)
    with pytest.raises(ValueError, match="continue_token must be a non-empty str"):
        call(mode, never, "list_page", limit=5, continue_token="")
    with pytest.raises(ValueError, match="resource_version cannot be combined with continue_token"):
        call(mode, never, "list_page", limit=5, continue_token="t", resource_version="3")
    with pytest.raises(TypeError):
        call(mode, never, "list_page")  # limit is required


@modes
def test_list_page_expired_token_is_typed(mode: str) -> None:
    _, handler = recorder(lambda r: status(410, "Expired", "continue token expired"))
    with pytest.raises(errors.Expired):
        call(mode, handler, "list_page", limit=5, continue_token="old")
