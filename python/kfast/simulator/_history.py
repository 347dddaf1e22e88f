"""Watch history as pre-framed bytes, and the wire framing the simulator writes.

A watch response is HTTP/1.1 chunked with exactly one chunk per event, as kube-apiserver
flushes after every event: ``<hex len>\\r\\n{"type":...,"object":...}\\n\\r\\n``. Events are
framed once, when they happen (or when churn is prepared), and kept in ``Segment``s: one
buffer plus per-event offsets. A watch connection then writes slices of those buffers with
``sendall``; the per-event cost on the server is zero Python work.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = ["Segment", "frame_event", "frame_line", "event_line", "bookmark_line",
           "status_doc", "END_CHUNK"]

END_CHUNK = b"0\r\n\r\n"


def event_line(etype: bytes, raw: bytes) -> bytes:
    return b'{"type":"' + etype + b'","object":' + raw + b"}\n"


def frame_line(line: bytes) -> bytes:
    """One HTTP chunk holding one line."""
    return b"%x\r\n" % len(line) + line + b"\r\n"


def frame_event(etype: bytes, raw: bytes) -> bytes:
    return frame_line(event_line(etype, raw))


def bookmark_line(kind: str, api_version: str, rv: int, initial_events_end: bool = False) -> bytes:
    ann = b',"annotations":{"k8s.io/initial-events-end":"true"}' if initial_events_end else b""
    return (b'{"type":"BOOKMARK","object":{"kind":"%s","apiVersion":"%s","metadata":'
            b'{"resourceVersion":"%d","creationTimestamp":null%s}}}\n'
            % (kind.encode(), api_version.encode(), rv, ann))


def status_doc(code: int, reason: str, message: str, *, continue_token: str | None = None,
               retry_after: int | None = None) -> bytes:
    """A metav1.Status failure body, as the API server sends it."""
    meta = b'{"continue":"%s"}' % continue_token.encode() if continue_token else b"{}"
    details = b',"details":{"retryAfterSeconds":%d}' % retry_after if retry_after is not None else b""
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

    buf: bytes | memoryview
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


@dataclass
class SegmentBuilder:
    """Accumulates framed events, then freezes them into one joined Segment."""

    parts: list[bytes] = field(default_factory=list)
    offs: list[int] = field(default_factory=lambda: [0])
    rvs: list[int] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    labels: list[dict[str, str]] = field(default_factory=list)

    def add(self, framed: bytes, rv: int, namespace: str, labels: dict[str, str]) -> None:
        self.parts.append(framed)
        self.offs.append(self.offs[-1] + len(framed))
        self.rvs.append(rv)
        self.namespaces.append(namespace)
        self.labels.append(labels)

    def build(self) -> Segment:
        return Segment(b"".join(self.parts), self.offs, self.rvs, self.namespaces, self.labels)
