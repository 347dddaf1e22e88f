"""The reflector state machine, every transition, without sockets."""

from __future__ import annotations

import random

import pytest

from kfast import errors
from kfast._reflector import (
    Backoff,
    ListFailed,
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
    WatchOpened,
    WatchProgress,
    WatchRequest,
)


class FixedRandom(random.Random):
    def __init__(self, value: float = 0.0) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def gone(reason: str = "Expired") -> errors.Gone:
    return errors.Gone({"kind": "Status", "code": 410, "reason": reason, "message": "too old resource version"})


def too_large() -> errors.ApiError:
    return errors.api_error_from_status({
        "code": 504, "reason": "Timeout", "message": "Too large resource version: 20, current: 10",
        "details": {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]},
    })


def make(**kw: object) -> Reflector:
    """A reflector on the LIST + WATCH path (the streaming list has its own tests)."""
    kw.setdefault("watch_list", False)
    return Reflector(ReflectorOptions(**kw), rng=FixedRandom())  # type: ignore[arg-type]


def synced(r: Reflector, rv: str = "100") -> WatchRequest:
    """Drive a fresh reflector through the initial LIST to its first WATCH."""
    a = r.start()
    assert isinstance(a, ListRequest)
    a2 = r.step(ListPage(["o1"], rv), 0.0)
    assert isinstance(a2, ReplaceStore)
    w = r.step(StoreReplaced(), 0.0)
    assert isinstance(w, WatchRequest)
    return w


# ---- initial list ---------------------------------------------------------------------------


def test_initial_list_is_rv0_paginated() -> None:
    r = make(page_size=2)
    assert r.start() == ListRequest({"resourceVersion": "0", "limit": "2"})


def test_pages_follow_continue_without_rv_and_accumulate() -> None:
    r = make(page_size=2)
    r.start()
    a = r.step(ListPage(["a", "b"], "7", "tok1"), 0)
    assert a == ListRequest({"continue": "tok1", "limit": "2"})
    a = r.step(ListPage(["c", "d"], "7", "tok2"), 0)
    assert a == ListRequest({"continue": "tok2", "limit": "2"})
    a = r.step(ListPage(["e"], "7", None), 0)
    assert a == ReplaceStore(["a", "b", "c", "d", "e"], "7")


def test_watch_starts_at_list_rv_with_bookmarks_and_random_timeout() -> None:
    r = Reflector(ReflectorOptions(watch_list=False), rng=FixedRandom(0.5))
    r.start()
    r.step(ListPage([], "42"), 0)
    w = r.step(StoreReplaced(), 0)
    assert w == WatchRequest({"watch": "true", "resourceVersion": "42", "allowWatchBookmarks": "true",
                              "timeoutSeconds": "450"})
    assert r.last_synced_rv == "42" and r.lists == 1


@pytest.mark.parametrize("seed", range(20))
def test_watch_timeout_between_5_and_10_minutes(seed: int) -> None:
    r = Reflector(ReflectorOptions(watch_list=False), rng=random.Random(seed))
    w = synced(r)
    assert 300 <= int(w.params["timeoutSeconds"]) <= 600


def test_selectors_on_every_request() -> None:
    r = make(label_selector="app=x", field_selector="spec.nodeName=n1", page_size=10)
    a = r.start()
    assert a.params["labelSelector"] == "app=x" and a.params["fieldSelector"] == "spec.nodeName=n1"
    r.step(ListPage([], "5"), 0)
    w = r.step(StoreReplaced(), 0)
    assert w is not None and w.params["labelSelector"] == "app=x" and w.params["fieldSelector"] == "spec.nodeName=n1"


def test_page_size_zero_means_unpaginated() -> None:
    r = make(page_size=0)
    assert r.start() == ListRequest({"resourceVersion": "0"})


def test_initial_list_failure_backs_off_and_retries_same_list() -> None:
    r = make()
    r.start()
    a = r.step(ListFailed(errors.ConnectError("refused")), 0)
    assert isinstance(a, Sleep) and a.seconds == pytest.approx(0.8)
    assert r.step(Slept(), 1) == ListRequest({"resourceVersion": "0", "limit": "500"})
    a = r.step(ListFailed(errors.InternalError({"code": 500})), 2)
    assert isinstance(a, Sleep) and a.seconds == pytest.approx(1.6)


def test_expired_continue_token_restarts_with_one_unpaginated_list() -> None:
    r = make(page_size=2)
    r.start()
    r.step(ListPage(["a", "b"], "7", "tok"), 0)
    a = r.step(ListFailed(gone()), 0)
    assert a == ListRequest({"resourceVersion": "0"})
    assert r.step(ListPage(["a", "b", "c"], "9", None), 0) == ReplaceStore(["a", "b", "c"], "9")


def test_initial_list_429_honours_retry_after() -> None:
    r = make()
    r.start()
    a = r.step(ListFailed(errors.TooManyRequests({"code": 429}, retry_after=7)), 0)
    assert isinstance(a, Sleep) and a.seconds == 7


# ---- watching -------------------------------------------------------------------------------


def test_events_and_bookmarks_advance_rv_and_normal_end_resumes() -> None:
    r = make()
    synced(r, "100")
    assert r.step(WatchOpened(), 1) is None
    assert r.step(WatchProgress("105"), 1) is None
    assert r.step(WatchProgress("110"), 2) is None  # a bookmark
    w = r.step(WatchEnded(), 3)
    assert isinstance(w, WatchRequest) and w.params["resourceVersion"] == "110"
    assert r.last_synced_rv == "110" and r.lists == 1


def test_empty_progress_rv_is_ignored() -> None:
    r = make()
    synced(r, "100")
    r.step(WatchProgress(""), 1)
    w = r.step(WatchEnded(), 1)
    assert w is not None and w.params["resourceVersion"] == "100"


@pytest.mark.parametrize("err", [errors.DecodeError("bad line", 17), errors.LineTooLongError("huge"),
                                 errors.StreamTruncated("eof mid-chunk")])
def test_decode_error_and_truncation_resume_at_once_from_last_rv(err: Exception) -> None:
    r = make()
    synced(r, "100")
    r.step(WatchProgress("120"), 1)
    w = r.step(WatchFailed(err), 2)
    assert isinstance(w, WatchRequest) and w.params["resourceVersion"] == "120"
    assert r.lists == 1


@pytest.mark.parametrize("fail", [
    WatchFailed(errors.DecodeError("unknown event type", 0)),
    WatchFailed(errors.StreamTruncated("cut mid-chunk")),
    WatchEnded(),
])
def test_watches_that_keep_breaking_without_progress_back_off(fail: Input) -> None:
    # Regression: a persistently bad event (or a proxy cutting every watch) made the
    # informer reconnect thousands of times a second.
    r = make()
    synced(r, "100")
    r.step(WatchProgress("120"), 1)
    w = r.step(fail, 2)
    assert isinstance(w, WatchRequest) and w.params["resourceVersion"] == "120"
    delays = []
    for t in range(3, 8):
        a = r.step(fail, t)
        assert isinstance(a, Sleep), a
        delays.append(a.seconds)
        w = r.step(Slept(), t)
        assert isinstance(w, WatchRequest) and w.params["resourceVersion"] == "120"
    assert delays == sorted(delays) and delays[0] == pytest.approx(0.8) and delays[-1] > 0.8
    # An event resets it: the next break is resumed at once again.
    r.step(WatchProgress("121"), 9)
    w = r.step(fail, 10)
    assert isinstance(w, WatchRequest) and w.params["resourceVersion"] == "121"
    assert r.lists == 1


@pytest.mark.parametrize("err", [
    errors.TooManyRequests({"code": 429}),
    errors.ConnectError("connection refused"),
    errors.ReadTimeout("silence"),
    errors.InternalError({"code": 500}),
    errors.api_error_from_status({"code": 503, "reason": "ServiceUnavailable"}),
    errors.ServerTimeout({"code": 504}),
])
def test_retryable_watch_errors_back_off_then_rewatch_without_relist(err: Exception) -> None:
    r = make()
    synced(r, "100")
    r.step(WatchProgress("130"), 1)
    a = r.step(WatchFailed(err), 2)
    assert isinstance(a, Sleep) and a.seconds == pytest.approx(0.8)
    w = r.step(Slept(), 3)
    assert isinstance(w, WatchRequest) and w.params["resourceVersion"] == "130"
    assert r.lists == 1


def test_retry_after_is_a_floor() -> None:
    r = make()
    synced(r)
    a = r.step(WatchFailed(errors.TooManyRequests({"code": 429}, retry_after=5)), 0)
    assert isinstance(a, Sleep) and a.seconds == 5
    r.step(Slept(), 5)
    a = r.step(WatchFailed(errors.TooManyRequests({"code": 429}, retry_after=0.1)), 6)
    assert isinstance(a, Sleep) and a.seconds == pytest.approx(1.6)  # backoff larger than floor


def test_backoff_doubles_to_cap_then_resets_after_two_healthy_minutes() -> None:
    r = make()
    synced(r)
    seen = []
    now = 0.0
    for _ in range(9):
        a = r.step(WatchFailed(errors.ConnectError("x")), now)
        assert isinstance(a, Sleep)
        seen.append(round(a.seconds, 3))
        r.step(Slept(), now)
        now += 1
    assert seen == [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0, 30.0]
    r.step(WatchOpened(), now)
    a = r.step(WatchFailed(errors.ConnectError("x")), now + 119)  # healthy, but not long enough
    assert isinstance(a, Sleep) and a.seconds == 30.0
    r.step(Slept(), now + 119)
    r.step(WatchOpened(), now + 120)
    a = r.step(WatchFailed(errors.ConnectError("x")), now + 240)
    assert isinstance(a, Sleep) and a.seconds == pytest.approx(0.8)


def test_jitter_adds_up_to_one_delay() -> None:
    b = Backoff(ReflectorOptions(), FixedRandom(0.999))
    assert b.delay(0) == pytest.approx(0.8 * 1.999)
    b0 = Backoff(ReflectorOptions(jitter=0.0), FixedRandom(0.999))
    assert b0.delay(0) == pytest.approx(0.8)


# ---- 410 and the relist discipline --------------------------------------------------------------


@pytest.mark.parametrize("reason", ["Expired", "Gone"])
def test_410_relists_at_last_synced_rv_unpaginated(reason: str) -> None:
    # The initial list was not paginated (RV "0" is served by the watch cache, which ignores
    # limit), so the relist is unpaginated too: with limit, RV=X would mean Exact, from etcd.
    r = make(page_size=50)
    synced(r, "100")
    r.step(WatchProgress("150"), 1)
    a = r.step(WatchFailed(gone(reason)), 2)
    assert a == ListRequest({"resourceVersion": "150"})
    assert r.step(ListPage(["x"], "160"), 3) == ReplaceStore(["x"], "160")
    w = r.step(StoreReplaced(), 3)
    assert w is not None and w.params["resourceVersion"] == "160"
    assert r.lists == 2


@pytest.mark.parametrize("failure", [gone(), too_large()])
def test_relist_falls_back_to_consistent_read_only_when_rv_unavailable(failure: Exception) -> None:
    r = make()
    synced(r, "100")
    r.step(WatchFailed(gone()), 1)
    a = r.step(ListFailed(failure), 2)
    assert a == ListRequest({"resourceVersion": "", "limit": "500"})
    assert r.rv_unavailable
    r.step(ListPage([], "300"), 3)
    w = r.step(StoreReplaced(), 3)
    assert w is not None and w.params["resourceVersion"] == "300"
    assert not r.rv_unavailable


def test_paginated_initial_list_makes_relists_paginated_not_older_than() -> None:
    r = make(page_size=2)
    r.start()
    r.step(ListPage(["a", "b"], "100", "tok"), 0)
    r.step(ListPage(["c"], "100"), 0)
    r.step(StoreReplaced(), 0)
    assert r.paginated_result
    r.step(WatchProgress("120"), 1)
    a = r.step(WatchFailed(gone()), 2)
    assert a == ListRequest({"resourceVersion": "120", "resourceVersionMatch": "NotOlderThan", "limit": "2"})
    assert r.step(ListPage(["a"], "130", "t2"), 3) == ListRequest({"continue": "t2", "limit": "2"})


def test_second_410_right_after_relist_backs_off_and_reads_consistently() -> None:
    # Seen against a real kube-apiserver after a restart: etcd still serves the old RV, the
    # new watch cache does not, so LIST at RV and WATCH from its RV alternate forever.
    r = make()
    synced(r, "216")
    r.step(WatchFailed(gone()), 1)
    r.step(ListPage([], "216"), 1)
    w = r.step(StoreReplaced(), 1)
    assert w is not None and w.params["resourceVersion"] == "216"
    a = r.step(WatchFailed(gone()), 1)
    assert isinstance(a, Sleep) and a.seconds == pytest.approx(0.8)
    assert r.step(Slept(), 2) == ListRequest({"resourceVersion": "", "limit": "500"})
    r.step(ListPage([], "230"), 2)
    w = r.step(StoreReplaced(), 2)
    assert w is not None and w.params["resourceVersion"] == "230" and not r.rv_unavailable


def test_410_after_progress_relists_at_once_again() -> None:
    r = make()
    synced(r, "100")
    r.step(WatchFailed(gone()), 1)
    r.step(ListPage([], "110"), 1)
    r.step(StoreReplaced(), 1)
    r.step(WatchProgress("120"), 2)
    assert r.step(WatchFailed(gone()), 3) == ListRequest({"resourceVersion": "120"})


def test_relist_other_failure_backs_off_and_retries_same_rv() -> None:
    r = make()
    synced(r, "100")
    r.step(WatchFailed(gone()), 1)
    a = r.step(ListFailed(errors.ConnectError("down")), 2)
    assert isinstance(a, Sleep)
    assert r.step(Slept(), 3) == ListRequest({"resourceVersion": "100"})


def test_consistent_relist_failing_again_backs_off_and_keeps_rv_empty() -> None:
    r = make()
    synced(r, "100")
    r.step(WatchFailed(gone()), 1)
    r.step(ListFailed(gone()), 2)
    a = r.step(ListFailed(gone()), 2)  # RV "" itself cannot be too old: treat as failure
    assert isinstance(a, Sleep)
    assert r.step(Slept(), 3) == ListRequest({"resourceVersion": "", "limit": "500"})


def test_in_stream_410_equals_http_410() -> None:
    a, b = make(), make()
    synced(a, "100")
    synced(b, "100")
    in_stream = errors.api_error_from_status({"kind": "Status", "code": 410, "reason": "Expired"})
    http = errors.api_error_from_status(None, code=410)
    assert a.step(WatchFailed(in_stream), 1) == b.step(WatchFailed(http), 1)


def test_unclassified_watch_error_backs_off_then_relists() -> None:
    r = make()
    synced(r, "100")
    r.step(WatchProgress("110"), 0)
    a = r.step(WatchFailed(errors.Forbidden({"code": 403})), 1)
    assert isinstance(a, Sleep)
    assert r.step(Slept(), 2) == ListRequest({"resourceVersion": "110"})


def test_relist_after_rv_unavailable_and_later_failure_uses_empty_rv() -> None:
    r = make()
    synced(r, "100")
    r.step(WatchFailed(gone()), 1)
    r.step(ListFailed(gone()), 1)  # now listing at ""
    a = r.step(ListFailed(errors.ConnectError("x")), 1)
    assert isinstance(a, Sleep)
    assert r.step(Slept(), 2) == ListRequest({"resourceVersion": "", "limit": "500"})


def test_unexpected_input_is_a_programming_error() -> None:
    r = make()
    r.start()
    with pytest.raises(RuntimeError):
        r.step(Slept(), 0)
    r2 = make()
    synced(r2)
    r2.step(WatchFailed(errors.ConnectError("x")), 0)
    with pytest.raises(RuntimeError):
        r2.step(WatchEnded(), 0)


@pytest.mark.parametrize("huge", [86_400.0, 1e300, float("inf")])
def test_a_huge_retry_after_is_capped_by_max_retry_after(huge: float) -> None:
    from kfast._backoff import MAX_RETRY_AFTER_SECONDS
    from kfast._core import RetryPolicy

    assert ReflectorOptions().max_retry_after == RetryPolicy().max_retry_after == MAX_RETRY_AFTER_SECONDS == 60
    r = make()
    synced(r)
    a = r.step(WatchFailed(errors.TooManyRequests({"code": 429}, retry_after=huge)), 0)
    assert isinstance(a, Sleep) and a.seconds == 60.0
    r2 = make(max_retry_after=2.5)
    r2.start()
    a = r2.step(ListFailed(errors.TooManyRequests({"code": 429}, retry_after=huge)), 0)
    assert isinstance(a, Sleep) and a.seconds == 2.5  # the initial LIST too
    r2.step(Slept(), 3)
    a = r2.step(ListFailed(errors.ServiceUnavailable({"code": 503}, retry_after=huge)), 4)
    assert isinstance(a, Sleep) and a.seconds == 2.5


def test_a_nonsense_retry_after_falls_back_to_backoff() -> None:
    r = make()
    synced(r)
    for bad in (float("nan"), -5.0):
        a = r.step(WatchFailed(errors.TooManyRequests({"code": 429}, retry_after=bad)), 0)
        assert isinstance(a, Sleep) and 0.8 <= a.seconds <= 60
        r.step(Slept(), 0)
