"""Type stubs for ``kfast._native``, the Rust extension (PyO3). This file is the contract
between the Rust bindings in ``rust/src/py/`` and the Python package; keep them in step
(``tests/test_stub.py`` runs ``mypy.stubtest`` on it).

Errors raised by this module are the classes of :mod:`kfast.errors` (DecodeError,
LineTooLongError, StreamTruncated, ApiError subclasses), never bare ``Exception``.
"""

import builtins
from collections.abc import Callable, Sequence
from typing import Any, Literal, final

from typing_extensions import Buffer

__version__: str

# --------------------------------------------------------------------------------------
# Cached objects
# --------------------------------------------------------------------------------------

@final
class StoredObject:
    """One Kubernetes object as the cache keeps it: its JSON bytes (immutable, shared,
    never copied by the cache) plus the metadata Rust extracted when it was decoded.

    Supports the buffer protocol: ``bytes(obj)`` / ``memoryview(obj)`` give the JSON, and
    ``msgspec.json.decode(obj)`` decodes it without a copy.
    """

    def __new__(cls, json: Buffer) -> StoredObject:
        """Parse a JSON object (bytes) and extract its metadata. Raises DecodeError."""
    @property
    def key(self) -> str:
        """``namespace/name``, or ``name`` for cluster-scoped objects."""
    @property
    def namespace(self) -> str:
        """Empty string for cluster-scoped objects."""
    @property
    def name(self) -> str: ...
    @property
    def uid(self) -> str: ...
    @property
    def resource_version(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def api_version(self) -> str: ...
    @property
    def labels(self) -> dict[str, str]: ...
    @property
    def owner_references(self) -> list[dict[str, Any]]:
        """Each as ``{"apiVersion", "kind", "name", "uid", "controller"}``."""
    @property
    def nbytes(self) -> int:
        """Size of the JSON bytes."""
    def raw(self) -> bytes:
        """The JSON bytes (a copy)."""
    def __buffer__(self, flags: int, /) -> memoryview: ...

@final
class DeletedFinalStateUnknown:
    """Tombstone: the object was deleted while the client was not watching. ``obj`` is the
    last state the cache knew (None if it never knew one)."""

    def __new__(cls, key: str, obj: StoredObject | None) -> DeletedFinalStateUnknown: ...
    @property
    def key(self) -> str: ...
    @property
    def obj(self) -> StoredObject | None: ...

# --------------------------------------------------------------------------------------
# Watch decoding
# --------------------------------------------------------------------------------------

EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]

@final
class WatchEvent:
    @property
    def type(self) -> EventType: ...
    @property
    def object(self) -> StoredObject | None:
        """The object of an ADDED/MODIFIED/DELETED event; None for BOOKMARK."""
    @property
    def resource_version(self) -> str:
        """The object's resourceVersion (for BOOKMARK: the bookmark's RV)."""
    @property
    def initial_events_end(self) -> bool:
        """True for the BOOKMARK annotated ``k8s.io/initial-events-end: "true"``."""
    @property
    def status(self) -> dict[str, Any] | None:
        """Always None: an ERROR event is not returned but raised (by ``feed``) as the
        :class:`kfast.errors.ApiError` subclass built from its Status."""

@final
class FeedResult:
    """What :meth:`WatchDecoder.feed_fifo` pushed into the FIFO."""

    @property
    def events(self) -> int:
        """Number of ADDED/MODIFIED/DELETED events queued."""
    @property
    def added(self) -> int:
        """ADDED events among ``events``."""
    @property
    def modified(self) -> int:
        """MODIFIED events among ``events``."""
    @property
    def deleted(self) -> int:
        """DELETED events among ``events``."""
    @property
    def bookmarks(self) -> int: ...
    @property
    def last_resource_version(self) -> str | None:
        """RV of the last event or bookmark in this feed (None if there was none)."""
    @property
    def initial_events_end(self) -> bool: ...
    @property
    def error_status(self) -> dict[str, Any] | None:
        """Status of an ERROR event, if one arrived; decoding stops after it."""

@final
class WatchDecoder:
    """Incremental decoder of a watch response.

    ``http=True``: the input is the raw bytes read from the socket after the request was
    sent: HTTP/1.1 status line and headers, then a chunked (or Content-Length, or
    read-until-close) body. ``http=False``: the input is already de-chunked body bytes
    (the httpx fallback).

    Feeds of any size and any split point give the same events. Blank lines are skipped.
    A line longer than ``max_line_bytes`` raises LineTooLongError; a malformed line raises
    DecodeError naming its offset. After an error the decoder is poisoned: events decoded
    before the error in the same feed are returned (or queued) first and the error is
    raised by the next call. The GIL is released while parsing.
    """

    def __new__(cls, *, http: bool = True, max_line_bytes: int = 67108864,
                transform: ObjectTransform | None = None) -> WatchDecoder:
        """``transform``: cut its fields out of every object decoded (bookmarks and ERROR
        Statuses are left alone), before the object is queued or returned."""
    @property
    def status_code(self) -> int | None:
        """HTTP status once the head has been parsed (None before; 200 when http=False)."""
    @property
    def headers(self) -> list[tuple[str, str]] | None: ...
    @property
    def body_offset(self) -> int:
        """Bytes of (de-chunked) body consumed so far."""
    @property
    def complete(self) -> bool:
        """True once the body's end (last chunk, or Content-Length) has been seen."""
    def feed(self, data: Buffer) -> list[WatchEvent]:
        """Decode ``data`` and return the complete events it finished. An ERROR event raises
        the ApiError subclass built from its Status. If the HTTP status is not 2xx, the body
        is collected and, when complete (or at :meth:`finish`), raised the same way.
        ``bytes`` are parsed in place; other buffers are copied first, so a reused receive
        buffer may be overwritten as soon as this returns."""
    def feed_fifo(self, data: Buffer, fifo: DeltaFIFO, *, capture_for: DeltaFIFO | None = None) -> FeedResult:
        """Like :meth:`feed`, but push each ADDED/MODIFIED/DELETED event straight into
        ``fifo`` (as Added/Updated/Deleted deltas) without creating Python objects. The
        values of the field indexes of ``capture_for``'s known_objects (default: ``fifo``'s)
        are captured while decoding, so those indexes need not walk the JSON again."""
    def finish(self) -> None:
        """Call at end of stream (EOF). Raises StreamTruncated if a chunk or line was
        left incomplete, or the pending error of a poisoned decoder. A second call gives the
        same outcome; any :meth:`feed`/:meth:`feed_fifo` after it raises ValueError (the
        stream has ended: use a new decoder per response)."""

@final
class ListResponse:
    """One LIST answer read off a keep-alive connection (``kfast._list_conn``): HTTP/1.1
    framing in Rust, the body kept whole for :meth:`decode`."""

    def __init__(self) -> None: ...
    def feed(self, data: Buffer) -> int:
        """Take this response's bytes from ``data``; returns how many were its (the rest
        belongs to the next response on the connection). DecodeError on bad framing."""
    @property
    def status_code(self) -> int | None: ...
    @property
    def headers(self) -> list[tuple[str, str]] | None: ...
    @property
    def complete(self) -> bool: ...
    @property
    def reusable(self) -> bool:
        """Whether the connection may carry another request after this response."""
    @property
    def consumed(self) -> int: ...
    @property
    def early_metadata(self) -> tuple[str, str | None] | None:
        """``(resourceVersion, continue or None)`` of a 2xx list body once its ``metadata``
        (written before ``items``) has arrived; None until then."""
    def finish(self) -> None:
        """The connection closed: StreamTruncated unless that ends the response."""
    def body(self) -> bytes: ...
    def decode(
        self,
        *,
        capture_for: DeltaFIFO | None = None,
        transform: ObjectTransform | None = None,
    ) -> tuple[list[StoredObject], str, str | None]:
        """As :func:`decode_list` on the body (which is then released)."""

def release_free_memory() -> None:
    """Return the pages the extension's allocator (mimalloc) holds free, including those of
    threads that have ended, to the OS. The informer calls it once a (re)list is applied."""

def decode_list(
    body: bytes,
    *,
    capture_for: DeltaFIFO | None = None,
    transform: ObjectTransform | None = None,
) -> tuple[list[StoredObject], str, str | None]:
    """Parse one LIST response body in one pass (GIL released): its items as StoredObjects
    (``transform`` applied; the field values of ``capture_for``'s known_objects' field
    indexes captured), its ``metadata.resourceVersion`` and its ``continue`` token (None
    when absent or empty). Raises DecodeError for invalid JSON or an item without
    ``metadata.name``."""

# --------------------------------------------------------------------------------------
# Transforms
# --------------------------------------------------------------------------------------

@final
class ObjectTransform:
    """A native transform: drops field paths from an object's JSON by splicing its bytes in
    Rust (each removed member goes with one adjacent comma; everything else stays as sent),
    keeping the extracted metadata consistent. Each path is a list of object keys
    (``["metadata", "managedFields"]``). Raises ValueError for an empty path or one that
    reaches ``metadata`` itself or its name, namespace, uid or resourceVersion."""

    def __new__(cls, paths: Sequence[Sequence[str]]) -> ObjectTransform: ...
    @property
    def paths(self) -> list[list[str]]:
        """The paths, without duplicates, in the order given."""
    def __call__(self, obj: StoredObject) -> StoredObject:
        """``obj`` without the fields; ``obj`` itself when it has none of them."""
    def __add__(self, other: ObjectTransform, /) -> ObjectTransform:
        """A transform dropping both transforms' paths."""
    def __radd__(self, other: ObjectTransform, /) -> ObjectTransform: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class WatchPump:
    """A watch decoder split across two threads, for the informer's socket path: the
    caller keeps reading the socket while a Rust thread decodes and queues into the FIFO.

    Input is a raw HTTP/1.1 response, as for ``WatchDecoder(http=True)``. Each
    :meth:`feed_fifo` copies the read into a recycled buffer, parses the HTTP framing at
    once (so :attr:`status_code`, :attr:`headers` and :attr:`complete` are current), queues
    the body bytes for the worker and returns what the worker finished since the last call.
    Events reach the FIFO in order, exactly once; a reported ``last_resource_version`` is
    only ever that of events already queued. Errors are those of ``WatchDecoder`` in the
    same order: raised (or, for an ERROR event, reported in ``error_status``) only after the
    events before them were reported; after an error every call raises it again.
    At most a few reads are queued: :meth:`feed_fifo` waits (GIL released) for the worker
    beyond that. :meth:`close` stops the worker and waits for it; nothing reaches the FIFO
    after it returns (work not yet done is dropped).
    """

    def __new__(cls, *, max_line_bytes: int = 67108864,
                transform: ObjectTransform | None = None) -> WatchPump: ...
    @property
    def status_code(self) -> int | None: ...
    @property
    def headers(self) -> list[tuple[str, str]] | None: ...
    @property
    def complete(self) -> bool:
        """True once the body's end was read (the worker may still be decoding up to it)."""
    def feed_fifo(self, data: Buffer, fifo: DeltaFIFO, *, wait: bool = False,
                  bounded: bool = False, capture_for: DeltaFIFO | None = None) -> FeedResult:
        """Queue ``data`` for decoding into ``fifo``; return what finished since the last
        call. Empty ``data`` or ``wait=True``: first wait until everything fed is decoded.
        ``capture_for``: capture the field-index values of that FIFO's store instead of
        ``fifo``'s (as ``WatchDecoder.feed_fifo``). ``bounded`` (ignored with ``wait``): the decode thread waits to queue more while
        ``fifo`` holds 1024 deltas, so only when another thread drains it (the informer's
        processor); a slow consumer then slows the reads instead of piling up the stream."""
    def finish(self) -> FeedResult:
        """End of input (EOF): wait for the worker, then raise StreamTruncated if a chunk or
        line was left incomplete (or the pending error); returns what it had not reported."""
    def close(self) -> None: ...

# --------------------------------------------------------------------------------------
# Index functions
# --------------------------------------------------------------------------------------

@final
class IndexFunc:
    """A built-in index function computed in Rust. Build with the static constructors.
    Anywhere an IndexFunc is accepted, a Python callable ``f(StoredObject) -> list[str]``
    also works (the slow path: it takes the GIL for every object indexed). It must return
    a sequence of str (a bare str is a TypeError); whatever it raises is raised by the
    Indexer call that ran it."""

    @staticmethod
    def namespace() -> IndexFunc:
        """Value: the object's namespace (cluster-scoped objects: no value)."""
    @staticmethod
    def label(key: str) -> IndexFunc:
        """Value: the label's value, if the label is set."""
    @staticmethod
    def annotation(key: str) -> IndexFunc:
        """Value: the annotation's value, if set."""
    @staticmethod
    def field(path: str) -> IndexFunc:
        """Value(s) at a dotted field path such as ``spec.nodeName``; a string, number or
        bool gives one value (its text), a list of scalars gives one value per element;
        absent or null gives none."""
    @staticmethod
    def owner_uid() -> IndexFunc:
        """One value per owner reference: its uid."""
    @staticmethod
    def owner_kind() -> IndexFunc:
        """One value per owner reference: ``Kind/name``."""
    def values(self, obj: StoredObject) -> list[str]:
        """Compute this function's values for ``obj`` (for tests and debugging)."""

IndexFuncLike = IndexFunc | Callable[[StoredObject], Sequence[str]]

# --------------------------------------------------------------------------------------
# Indexer and DeltaFIFO
# --------------------------------------------------------------------------------------

@final
class Indexer:
    """Thread-safe store of StoredObjects by key, with named indices. Semantics are those
    of client-go's ThreadSafeStore (see shared/docs/protocol.md, Indexer semantics)."""

    def __new__(cls, indexers: dict[str, IndexFuncLike] | None = None) -> Indexer: ...
    def add(self, obj: StoredObject) -> None: ...
    def update(self, obj: StoredObject) -> None: ...
    def delete(self, obj: StoredObject | DeletedFinalStateUnknown) -> None: ...
    def replace(self, objs: Sequence[StoredObject], resource_version: str) -> None: ...
    def get(self, obj: StoredObject) -> StoredObject | None: ...
    def get_by_key(self, key: str) -> StoredObject | None: ...
    def list(self) -> list[StoredObject]: ...
    def list_keys(self) -> builtins.list[str]: ...
    def add_indexers(self, indexers: dict[str, IndexFuncLike]) -> None:
        """Add indices; existing objects are indexed. Raises ValueError on a name clash."""
    def index(self, name: str, obj: StoredObject) -> builtins.list[StoredObject]:
        """Objects sharing at least one of ``obj``'s values in index ``name``."""
    def by_index(self, name: str, value: str) -> builtins.list[StoredObject]:
        """Raises KeyError if the index does not exist."""
    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        """Raises KeyError if the index does not exist."""
    def list_index_values(self, name: str) -> builtins.list[str]:
        """Values with at least one object (an unknown index gives [], as in client-go)."""
    def __len__(self) -> int: ...
    def __contains__(self, key: str, /) -> bool: ...
    @property
    def nbytes(self) -> int:
        """Approximate heap bytes held by the store (objects, keys, indices)."""
    def check_invariants(self) -> None:
        """Raise AssertionError if an index and the items disagree (tests)."""

DeltaType = Literal["Added", "Updated", "Deleted", "Replaced", "Sync"]

@final
class Delta:
    @property
    def type(self) -> DeltaType: ...
    @property
    def object(self) -> StoredObject | DeletedFinalStateUnknown: ...

@final
class DeltaFIFO:
    """client-go's DeltaFIFO (see shared/docs/protocol.md, DeltaFIFO semantics).
    ``known_objects`` is the Indexer the informer fills; replace() and resync() consult it."""

    def __new__(cls, known_objects: Indexer | None = None) -> DeltaFIFO: ...
    def add(self, obj: StoredObject) -> None: ...
    def update(self, obj: StoredObject) -> None: ...
    def delete(self, obj: StoredObject | DeletedFinalStateUnknown) -> None:
        """Queue a Deleted delta; ignored when neither ``known_objects`` nor the queue
        has the key (client-go). Two Deleted in a row collapse into one."""
    def replace(self, objs: Sequence[StoredObject], resource_version: str) -> None:
        """Replaced for each object; a Deleted tombstone for each key the queue or
        ``known_objects`` has that ``objs`` lacks. kfast extension: a listed object whose uid
        differs from the last known state of its key is preceded by a Deleted tombstone of
        that state (handlers see the old object's delete before the new one's add)."""
    def resync(self) -> None:
        """A Sync delta for each object of ``known_objects`` whose key is not queued."""
    def pop(self, timeout: float | None = None) -> tuple[str, list[Delta]] | None:
        """Oldest key and all its deltas; None on timeout or when closed and empty.
        The GIL is released while waiting."""
    def list_keys(self) -> list[str]: ...
    def get_by_key(self, key: str) -> list[Delta] | None: ...
    def has_synced(self) -> bool: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __len__(self) -> int:
        """Number of queued keys."""
    def check_invariants(self) -> None: ...

# One notification for Python handlers: (kind, obj, old, is_in_initial_list) where kind is
# 0 add (old None), 1 update, 2 delete (obj may be a tombstone, old None).
Notification = tuple[int, StoredObject | DeletedFinalStateUnknown, StoredObject | None, bool]

def process_batch(
    fifo: DeltaFIFO,
    indexer: Indexer,
    max_keys: int = 4096,
    timeout: float = 0.1,
    collect: bool = True,
) -> list[Notification] | int:
    """The informer's processor step, entirely in Rust with the GIL released: wait up to
    ``timeout`` for the FIFO, pop up to ``max_keys`` keys, apply their deltas to
    ``indexer`` (add/update/delete exactly as client-go's HandleDeltas), and return the
    notifications in order, or only their count when ``collect`` is False. Returns 0 / []
    on timeout; raises nothing when the FIFO is closed and empty (returns -1 then).

    ``indexer`` must be the FIFO's ``known_objects`` when it has one (ValueError otherwise).
    While a batch is being applied, the FIFO's replace/resync/delete treat its deltas as
    already stored, as client-go does by processing under the FIFO lock. One processor per
    FIFO.

    If an index function raises, the notifications produced before it are returned and
    the failing key's remaining deltas go back to the head of the FIFO (nothing is lost);
    when there is nothing to return, the exception is raised."""
