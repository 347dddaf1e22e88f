"""Client-side rate limiting: a token bucket shared by every request made with one Config.

Defaults: :data:`DEFAULT_QPS` requests per second with bursts of :data:`DEFAULT_BURST`.
client-go's historical 5/10 predates API Priority and Fairness, which now protects the server
itself; kubectl raised its own limits for the same reason. The limiter exists to keep one
runaway loop from flooding the cluster, not to ration a healthy controller. ``qps=None`` (or
0) turns it off. REST calls and watch starts both take a token.

The bucket does no waiting itself: :meth:`TokenBucket.reserve` says how long the caller must
wait before sending, and the sync or asyncio driver sleeps for that long.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket", "DEFAULT_QPS", "DEFAULT_BURST"]

DEFAULT_QPS = 50.0
DEFAULT_BURST = 100


class TokenBucket:
    """``burst`` tokens at most, refilled at ``qps`` per second. Thread-safe."""

    def __init__(self, qps: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be > 0 and burst >= 1")
        self.qps = float(qps)
        self.burst = int(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenBucket(qps={self.qps}, burst={self.burst})"

    def reserve(self) -> float:
        """Take one token now, possibly on credit; return the seconds to wait before using it.

        Reservations are first come first served: concurrent callers queue up behind each
        other's debt, so the long-run rate never exceeds ``qps``."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.qps)
            self._at = now
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.qps

    def wait(self) -> None:
        """Sync helper: reserve and sleep."""
        delay = self.reserve()
        if delay > 0:
            time.sleep(delay)
