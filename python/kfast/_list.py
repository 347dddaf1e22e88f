"""Paged LIST, without I/O: the pager's decisions and the decoding of pages.

A page is decoded by msgspec in one call, straight into the plain dicts the caller gets (no
per-item Python work). Following ``continue`` tokens, subsequent pages drop
``resourceVersion``/``resourceVersionMatch`` (the server rejects them with a token, which
carries the snapshot). When a continue token has expired (410 Expired, compaction while
paging), the pager does what client-go's ListPager does with FullListIfExpired: one full,
unpaged LIST at the resourceVersion first asked for (protocol.md, LIST and resourceVersion).
"""

from __future__ import annotations

import gc
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from kfast import errors
from kfast._core import Core
from kfast._rest_core import RestRequests
from kfast._stream import Emit, StreamStep

__all__ = ["Page", "ListPager", "Merged", "list_steps", "unseen", "item_key"]


class _Body(msgspec.Struct):
    kind: str = ""
    apiVersion: str = ""
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    items: list[dict[str, Any]] | None = None


_DECODER = msgspec.json.Decoder(_Body)


@dataclass
class Page:
    """One decoded LIST answer. ``restart`` is True for the full list that replaced an
    expired paged one: the items of earlier pages belong to an older snapshot."""

    kind: str
    api_version: str
    metadata: dict[str, Any]
    items: list[dict[str, Any]]
    restart: bool = False


def decode_page(resp: httpx.Response) -> Page:
    try:
        body = _decode_without_gc(resp.content)
    except msgspec.DecodeError as e:
        raise errors.DecodeError(f"LIST {resp.request.url.path}: {e}") from e
    return Page(body.kind, body.apiVersion, body.metadata, body.items or [])


def _decode_without_gc(content: bytes) -> _Body:
    # A page of 500 objects is ~10^4 new dicts and lists: the cyclic GC would run many
    # times while they are built, scanning every survivor again (half of the decoding time
    # on CPython 3.11). Decoded JSON holds no reference cycles, so pausing the collector
    # for the one call loses nothing. Only a collector that is on is paused and resumed.
    if not gc.isenabled():
        return _DECODER.decode(content)
    gc.disable()
    try:
        return _DECODER.decode(content)
    finally:
        gc.enable()


def item_key(item: Mapping[str, Any]) -> str:
    """``namespace/name`` or ``name``: the order in which the server pages (its storage keys)."""
    meta = item.get("metadata") or {}
    ns = meta.get("namespace")
    name = str(meta.get("name") or "")
    return f"{ns}/{name}" if ns else name


@dataclass
class ListPager:
    """Which LIST to send next, given the answers so far."""

    requests: RestRequests
    namespace: str | None
    params: dict[str, Any]  # as the caller asked (list_params): resourceVersion, limit ...
    continue_token: str | None = None
    done: bool = False
    fell_back: bool = False
    # The key of the last item handed out before a fallback: the full list's items up to
    # it were handed out already (from the older snapshot), so they are skipped.
    skip_through: str | None = None
    last_key: str | None = None
    _restart_next: bool = field(default=False, repr=False)

    def next_request(self) -> httpx.Request | None:
        if self.done:
            return None
        params = dict(self.params)
        if self.continue_token:
            params.pop("resourceVersion", None)
            params.pop("resourceVersionMatch", None)
            params["continue"] = self.continue_token
        if self.fell_back:
            params.pop("limit", None)
        return self.requests.list_page(self.namespace, params)

    def expired(self, err: errors.Expired) -> None:
        """A LIST answered 410 Expired: fall back once if it was a continue token's; else raise."""
        if not self.continue_token or self.fell_back:
            raise err
        self.fell_back = True
        self.continue_token = None
        self.skip_through = self.last_key
        self._restart_next = True

    def page(self, resp: httpx.Response) -> Page:
        p = decode_page(resp)
        token = p.metadata.pop("continue", None)
        p.metadata.pop("remainingItemCount", None)
        self.continue_token = str(token) if token and not self.fell_back else None
        self.done = self.continue_token is None
        if self._restart_next:
            p.restart = True
            self._restart_next = False
        if p.items:
            self.last_key = item_key(p.items[-1])
        return p


def list_steps(core: Core, pager: ListPager) -> Generator[StreamStep, Any, None]:
    """The LISTs of one paged list; emits each :class:`Page`."""
    while (req := pager.next_request()) is not None:
        try:
            resp = yield from core.call(req, decode=False)
        except errors.Expired as e:
            pager.expired(e)
            continue
        yield Emit([pager.page(resp)])


def unseen(page: Page, skip_through: str | None) -> list[dict[str, Any]]:
    """The items of a fallback list not handed out before: those after ``skip_through`` in
    key order (the order the server lists in, and resumes a continue token from)."""
    if skip_through is None:
        return page.items
    return [it for it in page.items if item_key(it) > skip_through]


class Merged:
    """Accumulates pages into one list object."""

    def __init__(self) -> None:
        self.first: Page | None = None
        self.items: list[dict[str, Any]] = []

    def add(self, page: Page) -> None:
        if page.restart or self.first is None:
            self.first = page
            self.items = list(page.items)
        else:
            self.items += page.items

    def result(self) -> dict[str, Any]:
        p = self.first
        if p is None:
            return {"items": []}
        return {"kind": p.kind, "apiVersion": p.api_version, "metadata": p.metadata, "items": self.items}

