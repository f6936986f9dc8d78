"""Per-client token buckets for chat posts, bounded in memory.

Each hub process limits on its own; behind several processes a client gets
at most that many times the rate, which is enough to stop a flood.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self, per_second: float, burst: int, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic
    ):
        self._per_second = per_second
        self._burst = burst
        self._max_clients = max_clients
        self._clock = clock
        # client -> (tokens, when they were counted); oldest-used first.
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    def allow(self, client: str) -> bool:
        """Take one token from the client's bucket; False when it is empty."""
        now = self._clock()
        tokens, since = self._buckets.pop(client, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - since) * self._per_second)
        allowed = tokens >= 1
        self._buckets[client] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self, client: str) -> int:
        """Whole seconds until the client's next token."""
        tokens, _ = self._buckets.get(client, (float(self._burst), 0.0))
        return max(1, int((1 - tokens) / self._per_second + 0.999))
