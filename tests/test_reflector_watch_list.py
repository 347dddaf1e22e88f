"""The streaming-list (WatchList) transitions of the reflector state machine, without sockets."""

from __future__ import annotations

import random

import pytest

from kfast import errors
from kfast._reflector import (
    InitialEventsEnd,
    InitialEventsTimedOut,
    ListPage,
    ListRequest,
    Reflector,
    ReflectorOptions,
    ReplaceStore,
    Sleep,
    Slept,
    StoreReplaced,
    WatchEnded,
    WatchFailed,
    WatchListRequest,
    WatchOpened,
    WatchProgress,
    WatchRequest,
)
from kfast._reflector import Watching


class FixedRandom(random.Random):
    def random(self) -> float:
        return 0.0


def make(**kw: object) -> Reflector:
    return Reflector(ReflectorOptions(**kw), rng=FixedRandom(0))  # type: ignore[arg-type]


def gone() -> errors.Gone:
    return errors.Gone({"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"})


def status(code: int, reason: str) -> errors.ApiError:
    return errors.api_error_from_status({"kind": "Status", "code": code, "reason": reason, "message": "no"})


def streamed(r: Reflector, rv: str = "100") -> None:
    """Drive a fresh reflector through a streaming list to its steady-state watch."""
    a = r.start()
    assert isinstance(a, WatchListRequest)
    assert r.step(WatchOpened(), 0.0) is None
    assert r.step(InitialEventsEnd(["o1"], rv), 0.0) == ReplaceStore(["o1"], rv)
    assert r.step(StoreReplaced(), 0.0) is None  # the same connection carries on


def test_starts_with_a_streaming_list_at_empty_rv() -> None:
    r = make(label_selector="app=x")
    assert r.start() == WatchListRequest({
        "watch": "true", "resourceVersion": "", "allowWatchBookmarks": "true",
        "timeoutSeconds": "300", "labelSelector": "app=x", "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan"})


def test_option_off_lists_at_rv0() -> None:
    assert make(watch_list=False, page_size=7).start() == ListRequest({"resourceVersion": "0", "limit": "7"})


def test_bookmark_replaces_then_keeps_streaming_and_progress_advances_rv() -> None:
    r = make()
    streamed(r, "100")
    assert r.lists == 1 and r.last_synced_rv == "100" and r.watch_list_supported is True
    assert r.step(WatchProgress("120"), 1) is None
    w = r.step(WatchEnded(), 2)
    # A normal end resumes as a plain watch: the initial set is already in the store.
    assert isinstance(w, WatchRequest) and w.params["resourceVersion"] == "120"
    assert "sendInitialEvents" not in w.params


def test_progress_before_the_bookmark_does_not_move_the_rv() -> None:
    r = make()
    r.start()
    assert r.step(WatchProgress("50"), 0) is None
    assert r.last_synced_rv == ""


@pytest.mark.parametrize("code,reason", [(422, "Invalid"), (400, "BadRequest"), (403, "Forbidden")])
def test_refusal_falls_back_to_list_and_remembers(code: int, reason: str) -> None:
    r = make(page_size=10)
    r.start()
    a = r.step(WatchFailed(status(code, reason)), 0)
    assert a == ListRequest({"resourceVersion": "0", "limit": "10"})
    assert r.watch_list_supported is False
    r.step(ListPage(["a"], "100"), 0)
    w = r.step(StoreReplaced(), 0)
    assert isinstance(w, WatchRequest)
    # A later 410 relists by LIST, never by streaming list again.
    r.step(WatchProgress("110"), 1)
    assert r.step(WatchFailed(gone()), 2) == ListRequest({"resourceVersion": "110"})


def test_end_before_bookmark_falls_back() -> None:
    r = make()
    r.start()
    r.step(WatchOpened(), 0)
    a = r.step(WatchEnded(), 1)
    assert isinstance(a, ListRequest) and a.params["resourceVersion"] == "0"
    assert r.watch_list_supported is False


def test_missing_initial_events_end_bookmark_falls_back_for_good() -> None:
    assert ReflectorOptions().initial_events_timeout == 120.0  # the documented default
    r = make()
    r.start()
    r.step(WatchOpened(), 0)
    r.step(WatchProgress("7"), 1)  # events keep coming, the bookmark never does
    a = r.step(InitialEventsTimedOut(), 121)
    assert isinstance(a, ListRequest) and a.params["resourceVersion"] == "0"
    assert r.watch_list_supported is False and r.last_synced_rv == ""
    r.step(ListPage(["o1"], "9"), 122)
    r.step(StoreReplaced(), 122)
    assert r.state == Watching("9")


@pytest.mark.parametrize("err", [errors.ConnectError("refused"), errors.StreamTruncated("cut"),
                                 errors.DecodeError("bad", 3)])
def test_transient_failure_before_bookmark_backs_off_and_streams_again(err: Exception) -> None:
    r = make()
    r.start()
    a = r.step(WatchFailed(err), 0)
    assert isinstance(a, Sleep) and a.seconds == pytest.approx(0.8)
    again = r.step(Slept(), 1)
    assert isinstance(again, WatchListRequest) and again.params["resourceVersion"] == ""
    assert r.watch_list_supported is None and r.lists == 0


def test_429_before_bookmark_honours_retry_after_without_falling_back() -> None:
    r = make()
    r.start()
    e = errors.api_error_from_status({"code": 429, "reason": "TooManyRequests"}, retry_after=4)
    a = r.step(WatchFailed(e), 0)
    assert isinstance(a, Sleep) and a.seconds >= 4
    assert isinstance(r.step(Slept(), 5), WatchListRequest)


def test_410_in_steady_state_relists_by_streaming_list_at_last_rv() -> None:
    r = make()
    streamed(r, "100")
    r.step(WatchProgress("150"), 1)
    a = r.step(WatchFailed(gone()), 2)
    assert isinstance(a, WatchListRequest) and a.params["resourceVersion"] == "150"
    assert a.params["resourceVersionMatch"] == "NotOlderThan"
    # That RV is gone as well: only now a consistent snapshot (RV "").
    b = r.step(WatchFailed(gone()), 3)
    assert isinstance(b, WatchListRequest) and b.params["resourceVersion"] == ""
    assert r.rv_unavailable
    r.step(InitialEventsEnd([], "300"), 4)
    assert r.step(StoreReplaced(), 4) is None
    assert not r.rv_unavailable and r.lists == 2 and r.last_synced_rv == "300"


def test_second_410_right_after_streaming_relist_backs_off_then_reads_consistently() -> None:
    r = make()
    streamed(r, "100")
    assert isinstance(r.step(WatchFailed(gone()), 1), WatchListRequest)
    r.step(InitialEventsEnd([], "100"), 1)
    r.step(StoreReplaced(), 1)
    a = r.step(WatchFailed(gone()), 1)
    assert isinstance(a, Sleep)
    b = r.step(Slept(), 2)
    assert isinstance(b, WatchListRequest) and b.params["resourceVersion"] == ""


def test_429_in_steady_state_rewatches_without_relist() -> None:
    r = make()
    streamed(r, "100")
    e = errors.api_error_from_status({"code": 429, "reason": "TooManyRequests"}, retry_after=2)
    a = r.step(WatchFailed(e), 1)
    assert isinstance(a, Sleep) and a.seconds >= 2
    w = r.step(Slept(), 3)
    assert isinstance(w, WatchRequest) and w.params["resourceVersion"] == "100"
    assert r.lists == 1


# ---- relist discipline regressions (protocol.md), both paths ----------------------------------


def too_large() -> errors.ApiError:
    return errors.api_error_from_status({
        "code": 504, "reason": "Timeout", "message": "Too large resource version: 20, current: 10",
        "details": {"causes": [{"reason": "ResourceVersionTooLarge"}]}})


def test_too_large_rv_on_streaming_relist_reads_consistently() -> None:
    r = make()
    streamed(r, "100")
    assert isinstance(r.step(WatchFailed(gone()), 1), WatchListRequest)
    b = r.step(WatchFailed(too_large()), 2)
    assert isinstance(b, WatchListRequest) and b.params["resourceVersion"] == ""


@pytest.mark.parametrize("watch_list", [True, False])
def test_repeated_429s_never_relist_and_keep_the_rv(watch_list: bool) -> None:
    r = make(watch_list=watch_list)
    if watch_list:
        streamed(r, "100")
    else:
        r.start()
        r.step(ListPage([], "100"), 0)
        r.step(StoreReplaced(), 0)
    e = errors.api_error_from_status({"code": 429, "reason": "TooManyRequests"})
    delays = []
    for i in range(6):
        a = r.step(WatchFailed(e), float(i))
        assert isinstance(a, Sleep)
        delays.append(a.seconds)
        w = r.step(Slept(), float(i))
        assert isinstance(w, WatchRequest) and w.params["resourceVersion"] == "100"
    assert delays == [0.8, 1.6, 3.2, 6.4, 12.8, 25.6]
    assert r.lists == 1


@pytest.mark.parametrize("watch_list", [True, False])
def test_410_after_connection_trouble_relists_at_last_rv_not_empty(watch_list: bool) -> None:
    r = make(watch_list=watch_list)
    if watch_list:
        streamed(r, "100")
    else:
        r.start()
        r.step(ListPage([], "100"), 0)
        r.step(StoreReplaced(), 0)
    r.step(WatchProgress("130"), 1)
    assert isinstance(r.step(WatchFailed(errors.ConnectError("refused")), 2), Sleep)
    r.step(Slept(), 3)
    a = r.step(WatchFailed(gone()), 4)
    assert a is not None and a.params["resourceVersion"] == "130"
    assert not r.rv_unavailable
