"""kfast._native.WatchDecoder: any split of the input gives the same events; errors are
the kfast.errors classes (with offsets); the GIL is released while parsing."""

from __future__ import annotations

import json
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kfast import errors
from kfast._native import StoredObject, WatchDecoder, WatchEvent


def pod(i: int, extra: str = "") -> dict:
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": f"p{i}",
            "namespace": "ns\u00e9",
            "uid": f"u{i}",
            "resourceVersion": str(100 + i),
            "labels": {"app": "web"},
            "annotations": {"note": "caf\u00e9 \U0001f680" + extra},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "r1", "controller": True}],
        },
        "spec": {"nodeName": f"n{i % 3}"},
    }


def line(kind: str, obj: dict) -> bytes:
    return json.dumps({"type": kind, "object": obj}, ensure_ascii=False).encode() + b"\n"


def chunked(lines: list[bytes], status: str = "200 OK", last: bool = True) -> bytes:
    out = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    for ln in lines:
        out += b"%x\r\n" % len(ln) + ln + b"\r\n"
    return out + (b"0\r\n\r\n" if last else b"")


BOOKMARK = {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "999", "annotations": {"k8s.io/initial-events-end": "true"}}}
LINES = [line("ADDED", pod(1)), b"\r\n", line("MODIFIED", pod(2)), line("BOOKMARK", BOOKMARK), line("DELETED", pod(3))]
STREAM = chunked(LINES)


def summary(events: list[WatchEvent]) -> list[tuple]:
    return [
        (e.type, e.resource_version, e.initial_events_end, e.object.key if e.object else None, e.object.raw() if e.object else None)
        for e in events
    ]


def decode(parts: list[bytes], http: bool = True) -> list[tuple]:
    d = WatchDecoder(http=http)
    events: list[WatchEvent] = []
    for p in parts:
        events += d.feed(p)
    d.finish()
    return summary(events)


def test_events_and_properties() -> None:
    d = WatchDecoder()
    assert d.status_code is None and d.headers is None and not d.complete
    evs = d.feed(STREAM)
    d.finish()
    assert [e.type for e in evs] == ["ADDED", "MODIFIED", "BOOKMARK", "DELETED"]
    assert d.status_code == 200 and d.complete
    assert ("Transfer-Encoding", "chunked") in (d.headers or [])
    assert d.body_offset == sum(len(x) for x in LINES)
    a = evs[0]
    assert isinstance(a.object, StoredObject)
    assert a.object.key == "ns\u00e9/p1" and a.resource_version == "101" and a.status is None
    assert json.loads(bytes(a.object)) == pod(1)
    assert a.object.owner_references[0]["kind"] == "ReplicaSet"
    b = evs[2]
    assert b.object is None and b.resource_version == "999" and b.initial_events_end


def test_every_split_point_gives_the_same_events() -> None:
    whole = decode([STREAM])
    for cut in range(len(STREAM) + 1):
        assert decode([STREAM[:cut], STREAM[cut:]]) == whole, cut


def test_one_byte_feeds_and_buffer_types() -> None:
    whole = decode([STREAM])
    assert decode([STREAM[i : i + 1] for i in range(len(STREAM))]) == whole
    d = WatchDecoder()
    buf = bytearray(STREAM)
    evs = d.feed(memoryview(buf))
    buf[:] = b"x" * len(buf)  # the decoder copied a mutable buffer; reusing it is safe
    assert summary(evs) == whole
    body = b"".join(LINES)
    assert decode([body], http=False) == whole
    assert WatchDecoder(http=False).status_code == 200


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
def test_random_splits(cuts: list[int]) -> None:
    offs = sorted([0, len(STREAM), *cuts])
    assert decode([STREAM[a:b] for a, b in zip(offs, offs[1:])]) == decode([STREAM])


def test_malformed_line_is_decode_error_with_offset_after_earlier_events() -> None:
    good = line("ADDED", pod(1))
    d = WatchDecoder(http=False)
    evs = d.feed(good + b'{"type":"ADDED","object":{"metadata":}}\n' + good)
    assert len(evs) == 1  # events before the error are returned first...
    with pytest.raises(errors.DecodeError) as ei:
        d.feed(b"")  # ...and the error is raised by the next call
    assert ei.value.offset == len(good)
    with pytest.raises(errors.DecodeError):
        d.finish()
    with pytest.raises(errors.DecodeError) as ei:
        WatchDecoder(http=False).feed(b'{"type":"UPSERTED","object":{}}\n')
    assert ei.value.offset == 0 and "unknown watch event type" in str(ei.value)


def test_line_too_long() -> None:
    d = WatchDecoder(http=False, max_line_bytes=1000)
    with pytest.raises(errors.LineTooLongError) as ei:
        d.feed(b"\n" + b"x" * 2000)
    assert ei.value.offset == 1
    assert isinstance(ei.value, errors.DecodeError)


def test_error_event_raises_gone() -> None:
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "too old resource version", "reason": "Expired", "code": 410}
    d = WatchDecoder()
    evs = d.feed(chunked([line("ADDED", pod(1)), line("ERROR", status)], last=False))
    assert len(evs) == 1
    with pytest.raises(errors.Gone) as ei:
        d.feed(b"")
    assert ei.value.code == 410 and ei.value.reason == "Expired" and ei.value.status == status
    # Nothing before it: raised at once.
    with pytest.raises(errors.Gone):
        WatchDecoder(http=False).feed(line("ERROR", status))


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [(403, "Forbidden", errors.Forbidden), (410, "Expired", errors.Gone), (429, "TooManyRequests", errors.TooManyRequests), (500, "InternalError", errors.InternalError)],
)
def test_non_2xx_response_raises_its_status(code: int, reason: str, cls: type) -> None:
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "no", "reason": reason, "code": code}
    body = json.dumps(status).encode()
    resp = f"HTTP/1.1 {code} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    d = WatchDecoder()
    assert d.feed(resp[:-5]) == []
    with pytest.raises(cls) as ei:
        d.feed(resp[-5:])
    assert ei.value.status == status and d.status_code == code


def test_non_json_error_body_and_truncation() -> None:
    d = WatchDecoder()
    d.feed(b"HTTP/1.1 503 Service Unavailable\r\n\r\nupstream gone\n")
    with pytest.raises(errors.ApiError) as ei:
        d.finish()
    assert ei.value.code == 503 and "upstream gone" in ei.value.message
    for cut in (10, len(STREAM) - 100, len(STREAM) - 3):
        d = WatchDecoder()
        d.feed(STREAM[:cut])
        with pytest.raises(errors.StreamTruncated):
            d.finish()


def test_gil_is_released_during_a_big_feed() -> None:
    big = b"".join(line("ADDED", pod(i, extra="x" * 2000)) for i in range(3000))
    resp = chunked([big])
    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0)

    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.01)
        # If the GIL were held, the spinner could never run during a feed; on a busy machine
        # it may simply not be scheduled in one, so a few attempts are allowed.
        progressed = []
        for _ in range(5):
            d = WatchDecoder()
            before = ticks
            evs = d.feed(resp)  # tens of ms of parsing
            progressed.append(ticks - before)
            if progressed[-1] > 0:
                break
    finally:
        stop.set()
        t.join()
    assert len(evs) == 3000
    assert max(progressed) > 0, progressed


@pytest.mark.parametrize("http", [True, False])
def test_feed_after_finish_is_a_value_error(http: bool) -> None:
    from kfast._native import DeltaFIFO, Indexer

    d = WatchDecoder(http=http)
    assert len(d.feed(STREAM if http else b"".join(LINES))) == 4
    d.finish()
    d.finish()  # the same outcome again, not an error
    for late in (b"", line("ADDED", pod(9))):
        with pytest.raises(ValueError, match=r"feed\(\) after finish\(\)"):
            d.feed(late)
    fifo = DeltaFIFO(known_objects=Indexer())
    with pytest.raises(ValueError, match="after finish"):
        d.feed_fifo(line("ADDED", pod(9)), fifo)
    assert len(fifo) == 0  # nothing reached the FIFO


def test_feed_after_a_failed_finish_is_still_refused() -> None:
    d = WatchDecoder(http=False)
    d.feed(line("ADDED", pod(1))[:20])
    with pytest.raises(errors.StreamTruncated):
        d.finish()
    with pytest.raises(ValueError, match="after finish"):
        d.feed(line("ADDED", pod(1))[20:])
