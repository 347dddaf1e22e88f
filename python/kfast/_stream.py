"""Drivers for the resource clients' multi-request operations (paged lists, watches, logs).

Those operations are generators of steps, written once and without I/O: the steps of
:meth:`kfast._core.Core.call` (send, sleep, read a body), plus :class:`ReadChunk` (the next
bytes of a streamed body), :class:`Close` (done with a streamed body) and :class:`Emit`
(values for the caller). :func:`drive` runs one with a :class:`kfast.Client` and
:func:`adrive` with a :class:`kfast.AsyncClient`; they differ only where they wait.

A driver owns every streamed response it opened: leaving the iteration early (``break``,
an exception, :meth:`Streams.abort` from another thread) closes them.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import httpx

from kfast._core import Core, Read, Send, Sleep

if TYPE_CHECKING:
    from kfast._client import AsyncClient, Client

__all__ = ["ReadChunk", "Close", "Emit", "StreamStep", "Streams", "drive", "adrive", "Operation",
           "StreamIterator", "AsyncStreamIterator"]

T = TypeVar("T")


@dataclass(frozen=True)
class ReadChunk:
    """Reply with the next bytes of ``response``'s body, None at its end, or the exception."""

    response: httpx.Response


@dataclass(frozen=True)
class Close:
    response: httpx.Response


@dataclass(frozen=True)
class Emit(Generic[T]):
    """Hand ``values`` to the caller, in order; the reply is None."""

    values: list[T]


StreamStep = Send | Sleep | Read | ReadChunk | Close | Emit[Any]
Steps = Generator[StreamStep, Any, None]


class Streams:
    """The streamed responses a driver has open. :meth:`abort` may be called from any thread
    (or task) to wake a read blocked on one of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, httpx.Response] = {}
        self._sync_iters: dict[int, Iterator[bytes]] = {}
        self._async_iters: dict[int, AsyncIterator[bytes]] = {}
        self._aborted = False

    def add(self, resp: httpx.Response) -> None:
        with self._lock:
            self._open[id(resp)] = resp
            aborted = self._aborted
        if aborted:
            _shutdown(resp)  # stop() came while this one was being opened

    def forget(self, resp: httpx.Response) -> None:
        with self._lock:
            self._open.pop(id(resp), None)
            self._sync_iters.pop(id(resp), None)
            self._async_iters.pop(id(resp), None)

    def sync_iter(self, resp: httpx.Response) -> Iterator[bytes]:
        it = self._sync_iters.get(id(resp))
        if it is None:
            it = self._sync_iters[id(resp)] = resp.iter_bytes()
        return it

    def async_iter(self, resp: httpx.Response) -> AsyncIterator[bytes]:
        it = self._async_iters.get(id(resp))
        if it is None:
            it = self._async_iters[id(resp)] = resp.aiter_bytes()
        return it

    def take_all(self) -> list[httpx.Response]:
        with self._lock:
            out = list(self._open.values())
            self._open.clear()
            self._sync_iters.clear()
            self._async_iters.clear()
        return out

    def abort(self) -> None:
        """Wake any read blocked on an open response (now, or opened from now on), from
        any thread or task: shut its TCP socket down (under any TLS layer, without touching
        objects the reader is using); the read then fails or ends, which the operation
        treats as the stop it asked for. The driver closes the responses afterwards."""
        with self._lock:
            self._aborted = True
            open_ = list(self._open.values())
        for r in open_:
            _shutdown(r)


def _shutdown(resp: httpx.Response) -> None:
    ns = resp.extensions.get("network_stream")
    sock = ns.get_extra_info("socket") if ns is not None else None
    try:
        if isinstance(sock, socket.socket):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # under an SSLSocket too
        elif sock is not None:
            sock.shutdown(socket.SHUT_RDWR)  # asyncio's TransportSocket
    except (OSError, AttributeError):
        pass  # already closed


def drive(client: Client, steps: Steps, streams: Streams | None = None) -> Generator[Any, None, None]:
    """Run ``steps`` with the sync client; yield what it emits."""
    streams = streams if streams is not None else Streams()
    reply: Any = None
    try:
        while True:
            try:
                step = steps.send(reply)
            except StopIteration:
                return
            reply = None
            if isinstance(step, Emit):
                yield from step.values
            elif isinstance(step, ReadChunk):
                try:
                    reply = next(streams.sync_iter(step.response), None)
                except httpx.HTTPError as e:
                    reply = e
            elif isinstance(step, Close):
                streams.forget(step.response)
                step.response.close()
            else:
                reply = client._perform(step)
                if isinstance(step, Send) and step.stream and isinstance(reply, httpx.Response):
                    streams.add(reply)
    finally:
        steps.close()
        for r in streams.take_all():
            r.close()


async def adrive(client: AsyncClient, steps: Steps,
                 streams: Streams | None = None) -> AsyncGenerator[Any, None]:
    """Run ``steps`` with the asyncio client; yield what it emits."""
    streams = streams if streams is not None else Streams()
    reply: Any = None
    try:
        while True:
            try:
                step = steps.send(reply)
            except StopIteration:
                return
            reply = None
            if isinstance(step, Emit):
                for v in step.values:
                    yield v
            elif isinstance(step, ReadChunk):
                try:
                    reply = await streams.async_iter(step.response).__anext__()
                except StopAsyncIteration:
                    reply = None
                except httpx.HTTPError as e:
                    reply = e
            elif isinstance(step, Close):
                streams.forget(step.response)
                await step.response.aclose()
            else:
                reply = await client._perform(step)
                if isinstance(step, Send) and step.stream and isinstance(reply, httpx.Response):
                    streams.add(reply)
    finally:
        steps.close()
        for r in streams.take_all():
            await r.aclose()


class Operation(Protocol):
    """A streamed operation's state: its steps, and a flag the steps check after each read."""

    @property
    def stopped(self) -> bool: ...

    def stop(self) -> None: ...

    def steps(self, core: Core) -> Steps: ...


class StreamIterator(Generic[T]):
    """The values an operation emits, through a :class:`kfast.Client`. :meth:`stop` (any
    thread) ends the iteration quietly, waking a blocked read; a context manager."""

    def __init__(self, client: Client, op: Operation) -> None:
        self._op = op
        self._streams = Streams()
        self._it = drive(client, op.steps(client._core), self._streams)

    def __iter__(self) -> StreamIterator[T]:
        return self

    def __next__(self) -> T:
        if self._op.stopped:
            self._it.close()  # stop() may come between two values of one read
            raise StopIteration
        value: T = next(self._it)
        return value

    def stop(self) -> None:
        self._op.stop()
        self._streams.abort()

    def close(self) -> None:
        self.stop()
        try:
            self._it.close()
        except ValueError:
            pass  # running in another thread: it returns by itself after stop()

    def __enter__(self) -> StreamIterator[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStreamIterator(Generic[T]):
    """The asyncio twin of :class:`StreamIterator`: ``async for``, ``async with``; ``stop()``
    works from any task or thread, ``await close()``."""

    def __init__(self, client: AsyncClient, op: Operation) -> None:
        self._op = op
        self._streams = Streams()
        self._it = adrive(client, op.steps(client._core), self._streams)

    def __aiter__(self) -> AsyncStreamIterator[T]:
        return self

    async def __anext__(self) -> T:
        if self._op.stopped:
            await self._it.aclose()
            raise StopAsyncIteration
        value: T = await self._it.__anext__()
        return value

    def stop(self) -> None:
        self._op.stop()
        self._streams.abort()

    async def close(self) -> None:
        self.stop()
        try:
            await self._it.aclose()
        except RuntimeError:
            pass  # being iterated by another task: it returns by itself after stop()

    async def __aenter__(self) -> AsyncStreamIterator[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
