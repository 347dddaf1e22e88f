"""``Warning`` response headers (deprecated APIs, admission warnings) and their handlers.

kube-apiserver sends ``Warning: 299 - "text"`` (RFC 7234 syntax; several per response, or
several comma-separated in one header). Each text goes to the client's warning handler, any
callable taking a string. The default, :class:`LogOnceWarningHandler`, logs each distinct
text once per client at WARNING on the ``kfast.warnings`` logger.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["WarningHandler", "LogOnceWarningHandler", "parse_warning_header"]

WarningHandler = Callable[[str], None]

log = logging.getLogger("kfast.warnings")


class LogOnceWarningHandler:
    """Logs each distinct warning text once (servers repeat them on every request)."""

    def __init__(self, logger: logging.Logger = log, limit: int = 1000) -> None:
        self._logger = logger
        self._seen: set[str] = set()
        self._limit = limit
        self._lock = threading.Lock()

    def __call__(self, text: str) -> None:
        with self._lock:
            if text in self._seen:
                return
            if len(self._seen) < self._limit:  # bounded: a server could vary its texts
                self._seen.add(text)
        self._logger.warning("server warning: %s", text)


def parse_warning_header(value: str) -> list[str]:
    """The warn-text of each warning in one header value; malformed parts are kept whole."""
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " ,":
            i += 1
        if i >= n:
            break
        start = i
        # warn-code and warn-agent: two space-separated tokens before the quoted text.
        parts = 0
        while i < n and parts < 2:
            while i < n and value[i] not in " ,":
                i += 1
            parts += 1
            while i < n and value[i] == " ":
                i += 1
        if i >= n or value[i] != '"':
            end = value.find(",", i)
            end = n if end < 0 else end
            out.append(value[start:end].strip())
            i = end + 1
            continue
        i += 1
        text: list[str] = []
        while i < n and value[i] != '"':
            if value[i] == "\\" and i + 1 < n:
                i += 1
            text.append(value[i])
            i += 1
        out.append("".join(text))
        i += 1
        # an optional quoted warn-date follows; skip to the next comma outside quotes
        while i < n and value[i] != ",":
            if value[i] == '"':
                close = value.find('"', i + 1)
                i = n if close < 0 else close
            i += 1
    return out
