"""Container logs (``pods/<name>/log``), streamed line by line, without I/O.

The body is plain text that arrives in chunks of any size: a line (or a multi-byte UTF-8
character) can span chunks, so bytes are split at ``\\n`` first and each whole line is then
decoded (invalid UTF-8 becomes U+FFFD: a container may write anything). Lines are handed
out without their ``\\n``; a last line without one is handed out at the end of the body.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, timezone
from typing import Any

import httpx

from kfast._core import Core
from kfast._stream import Close, Emit, ReadChunk, StreamStep
from kfast._transport import map_transport_error

__all__ = ["LineSplitter", "LogStream", "log_params"]


class LineSplitter:
    """Bytes in, whole decoded lines out."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[str]:
        data = self._rest + chunk if self._rest else chunk
        parts = data.split(b"\n")
        self._rest = parts.pop()
        return [p.decode("utf-8", "replace") for p in parts]

    def finish(self) -> list[str]:
        rest, self._rest = self._rest, b""
        return [rest.decode("utf-8", "replace")] if rest else []


def _rfc3339(t: datetime | str) -> str:
    if isinstance(t, str):
        return t
    if not isinstance(t, datetime):
        raise TypeError(f"since_time must be a datetime or an RFC 3339 string, not {type(t).__name__}")
    if t.tzinfo is None:
        raise ValueError("since_time must be timezone-aware (a naive datetime is ambiguous)")
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _positive(option: str, value: int | None, minimum: int = 0) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
        raise ValueError(f"{option} must be an int >= {minimum}, not {value!r}")
    return value


def log_params(*, container: str | None = None, follow: bool = False, tail_lines: int | None = None,
               since_seconds: int | None = None, since_time: datetime | str | None = None,
               timestamps: bool = False, previous: bool = False,
               limit_bytes: int | None = None) -> dict[str, Any]:
    """The query of a log request (PodLogOptions), with the values checked."""
    if since_seconds is not None and since_time is not None:
        raise ValueError("give since_seconds or since_time, not both")
    params: dict[str, Any] = {
        "container": container,
        "tailLines": _positive("tail_lines", tail_lines),
        "sinceSeconds": _positive("since_seconds", since_seconds, 1),
        "sinceTime": _rfc3339(since_time) if since_time is not None else None,
        "limitBytes": _positive("limit_bytes", limit_bytes, 1),
    }
    for key, flag in (("follow", follow), ("timestamps", timestamps), ("previous", previous)):
        if flag:
            params[key] = True
    return {k: v for k, v in params.items() if v is not None}


class LogStream:
    """One log request: opens it and emits its lines as they arrive (see the module docstring)."""

    def __init__(self, request: httpx.Request) -> None:
        if request.url.params.get("follow") == "true":
            # A quiet container may log nothing for hours: no read timeout while following.
            request.extensions["timeout"] = httpx.Timeout(30.0, read=None).as_dict()
        self.request = request
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True

    def steps(self, core: Core) -> Generator[StreamStep, Any, None]:
        resp = yield from core.call(self.request, stream=True)
        lines = LineSplitter()
        while True:
            chunk = yield ReadChunk(resp)
            if self.stopped:
                return
            if isinstance(chunk, BaseException):
                raise map_transport_error(chunk) from chunk
            if chunk is None:
                break
            out = lines.feed(chunk)
            if out:
                yield Emit(out)
        rest = lines.finish()
        if rest:
            yield Emit(rest)
        yield Close(resp)
