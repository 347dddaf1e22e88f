"""Watch history as pre-framed bytes, and the wire framing the simulator writes.

A watch response is HTTP/1.1 chunked with exactly one chunk per event, as kube-apiserver
flushes after every event: ``<hex len>\\r\\n{"type":...,"object":...}\\n\\r\\n``. Events are
framed once, when they happen (or when churn is prepared), and kept in ``Segment``s: one
buffer plus per-event offsets. A watch connection then writes slices of those buffers with
``sendall``; the per-event cost on the server is zero Python work.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

__all__ = ["Raw", "Segment", "frame_line", "event_line", "bookmark_line",
           "status_doc", "END_CHUNK"]

END_CHUNK = b"0\r\n\r\n"


Raw = bytes | bytearray | memoryview  # an object's JSON, possibly a view into a buffer


def event_line(etype: bytes, raw: Raw) -> bytes:
    return b'{"type":"' + etype + b'","object":' + raw + b"}\n"


def frame_line(line: bytes) -> bytes:
    """One HTTP chunk holding one line."""
    return b"%x\r\n" % len(line) + line + b"\r\n"


def bookmark_line(kind: str, api_version: str, rv: int, initial_events_end: bool = False) -> bytes:
    ann = b',"annotations":{"k8s.io/initial-events-end":"true"}' if initial_events_end else b""
    return (b'{"type":"BOOKMARK","object":{"kind":"%s","apiVersion":"%s","metadata":'
            b'{"resourceVersion":"%d","creationTimestamp":null%s}}}\n'
            % (kind.encode(), api_version.encode(), rv, ann))


def status_doc(code: int, reason: str, message: str, *, continue_token: str | None = None,
               retry_after: int | None = None) -> bytes:
    """A metav1.Status failure body, as the API server sends it."""
    meta = b'{"continue":"%s"}' % continue_token.encode() if continue_token else b"{}"
    details = b""
    if retry_after is not None:
        details = b',"details":{"retryAfterSeconds":%d}' % retry_after
    return (b'{"kind":"Status","apiVersion":"v1","metadata":%s,"status":"Failure",'
            b'"message":"%s","reason":"%s"%s,"code":%d}'
            % (meta, message.replace('"', "'").encode(), reason.encode(), details, code))


@dataclass
class Segment:
    """Consecutive watch events of one resource, framed and joined in one buffer.

    Invariants: ``len(offs) == len(rvs) + 1``, ``offs[0] == 0``, ``offs[-1] == len(buf)``,
    ``rvs`` strictly increasing; ``namespaces[i]``/``labels[i]`` describe event i's object
    (used only by filtered watches).
    """

    buf: bytes | bytearray | memoryview
    offs: list[int]
    rvs: list[int]
    namespaces: list[str]
    labels: list[dict[str, str]]

    def __len__(self) -> int:
        return len(self.rvs)

    def first_after(self, rv: int) -> int:
        """Index of the first event with resourceVersion > rv (len(self) if none)."""
        return bisect.bisect_right(self.rvs, rv)

    def slice(self, a: int, b: int) -> Segment:
        base = self.offs[a]
        mv = memoryview(self.buf)[base:self.offs[b]]
        return Segment(mv, [o - base for o in self.offs[a:b + 1]], self.rvs[a:b],
                       self.namespaces[a:b], self.labels[a:b])


class SegmentBuilder:
    """Frames events straight into one growing buffer (one copy of each object's bytes),
    then freezes them into a Segment."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.offs: list[int] = [0]
        self.rvs: list[int] = []
        self.namespaces: list[str] = []
        self.labels: list[dict[str, str]] = []

    def add_event(self, etype: bytes, raw: Raw, rv: int, namespace: str,
                  labels: dict[str, str]) -> None:
        buf = self.buf
        # chunk size = len('{"type":"') + len(etype) + len('","object":') + len(raw) + len('}\n')
        buf += b'%x\r\n{"type":"' % (22 + len(etype) + len(raw))
        buf += etype
        buf += b'","object":'
        buf += raw
        buf += b"}\n\r\n"
        self.offs.append(len(buf))
        self.rvs.append(rv)
        self.namespaces.append(namespace)
        self.labels.append(labels)

    def build(self) -> Segment:
        return Segment(self.buf, self.offs, self.rvs, self.namespaces, self.labels)
