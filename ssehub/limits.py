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


class Lease:
    """One admitted stream's place under the limits, given back once, by
    whoever ends the stream: its response, or the connection it was handed to."""

    __slots__ = ("_limits", "_client", "handed_over")

    def __init__(self, limits: StreamLimits, client: str):
        self._limits: StreamLimits | None = limits
        self._client = client
        # Set when the stream left its response (direct.Handover): the response's end is not the stream's.
        self.handed_over = False

    def release(self) -> None:
        limits, self._limits = self._limits, None
        if limits is not None:
            limits.release(self._client)
