"""How many streams may be open: per client address, and in this process.

Past either limit /events answers 200 with a `retry:` and ends (EventSource
gives up for good on any other status), so one client cannot
hold the hub's sockets and a crowd backs off instead of piling up.
"""

from __future__ import annotations

import collections


class StreamLimits:
    def __init__(self, per_client: int, total: int):
        # per_client 0: no per-client limit.
        self.per_client = per_client
        self.total = total
        self.open = 0
        self.refused = 0
        self._by_client: collections.Counter[str] = collections.Counter()

    def admit(self, client: str) -> str | None:
        """Count one more stream for `client`, or say why not."""
        if self.open >= self.total:
            reason = f"the hub is at its limit of {self.total} streams"
        elif self.per_client and self._by_client[client] >= self.per_client:
            reason = f"this address has {self.per_client} streams open already"
        else:
            self.open += 1
            self._by_client[client] += 1
            return None
        self.refused += 1
        return reason

    def release(self, client: str) -> None:
        self.open -= 1
        self._by_client[client] -= 1
        if not self._by_client[client]:
            del self._by_client[client]
