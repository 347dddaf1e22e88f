"""Backoff and the classification of failures the reflector reacts to (docs/protocol.md,
"Reflector discipline"). No I/O: the clock and the random source are handed in."""

from __future__ import annotations

import math
import random
from typing import Protocol

from kfast import errors

__all__ = ["Backoff", "BackoffOptions", "is_expired", "is_too_large_rv", "is_watch_list_refusal",
           "retry_watch_after_backoff", "retry_after", "MAX_RETRY_AFTER_SECONDS"]

# The longest Retry-After kfast waits for, by default (RetryPolicy for REST, ReflectorOptions
# for informers): a proxy or a broken server saying "come back in a day" must not park a
# client or an informer for a day.
MAX_RETRY_AFTER_SECONDS = 60.0


class BackoffOptions(Protocol):
    @property
    def initial_backoff(self) -> float: ...
    @property
    def max_backoff(self) -> float: ...
    @property
    def backoff_reset_after(self) -> float: ...
    @property
    def jitter(self) -> float: ...


class Backoff:
    """800 ms doubling to 30 s; ``healthy(now)`` marks the start of a good period, and a
    failure after ``reset_after`` seconds of health starts again from the initial delay."""

    def __init__(self, opts: BackoffOptions, rng: random.Random) -> None:
        self._opts = opts
        self._rng = rng
        self._next = opts.initial_backoff
        self._healthy_since: float | None = None

    def healthy(self, now: float) -> None:
        if self._healthy_since is None:
            self._healthy_since = now

    def delay(self, now: float, floor: float | None = None) -> float:
        if self._healthy_since is not None and now - self._healthy_since >= self._opts.backoff_reset_after:
            self._next = self._opts.initial_backoff
        self._healthy_since = None
        base = self._next
        self._next = min(self._next * 2, self._opts.max_backoff)
        d = base * (1.0 + self._opts.jitter * self._rng.random())
        return max(d, floor) if floor is not None else d


def is_expired(err: BaseException) -> bool:
    return isinstance(err, errors.Gone)


def is_too_large_rv(err: BaseException) -> bool:
    # kube-apiserver answers a LIST at an RV newer than its cache with 504 Timeout and a cause
    # of reason ResourceVersionTooLarge ("Too large resource version").
    if not isinstance(err, errors.ApiError):
        return False
    if "too large resource version" in err.message.lower():
        return True
    causes = err.details.get("causes") or []
    return any(isinstance(c, dict) and c.get("reason") == "ResourceVersionTooLarge" for c in causes)


def retry_watch_after_backoff(err: BaseException) -> bool:
    if isinstance(err, (errors.TooManyRequests, errors.ConnectError, errors.ReadTimeout)):
        return True
    return isinstance(err, errors.ApiError) and (err.code >= 500 or isinstance(err, errors.ServerTimeout))


def retry_after(err: BaseException, cap: float = MAX_RETRY_AFTER_SECONDS) -> float | None:
    """The error's Retry-After in seconds, at most ``cap`` (None when it has none or it is
    not a number; a negative one is 0)."""
    ra = getattr(err, "retry_after", None)
    if ra is None:
        return None
    try:
        v = float(ra)
    except (TypeError, ValueError):
        return None
    if math.isnan(v):
        return None
    return min(max(v, 0.0), cap)


def is_watch_list_refusal(err: BaseException) -> bool:
    """A server that cannot serve a streaming list says so with a 4xx (422 Invalid when the
    WatchList feature is off, 400 BadRequest when it does not know resourceVersionMatch on a
    watch, 403 when a policy forbids it). 410 and 429 are about the RV and load, not support."""
    if not isinstance(err, errors.ApiError):
        return False
    return 400 <= err.code < 500 and err.code not in (408, 410, 429)
