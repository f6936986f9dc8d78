"""The embedded broker: history and notification inside this one process.

Serves the same contract as the Redis broker for development and single-process
deployments; history is lost when the process ends, which resuming clients are
told (their ids are below the new floor).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import gevent

from ..cursor import EventId
from ..event import Event
from ..idempotency import IDEMPOTENCY_SECONDS, Idempotency
from . import CONFLICT, REPLAY_PAGE_BYTES, IdempotencyConflict, Replay


class _Channel:
    __slots__ = ("history", "floor", "last")

    def __init__(self, floor: EventId, size: int):
        self.history: collections.deque[Event] = collections.deque(maxlen=size)
        # Everything at or below the floor is gone (trimmed, or before this
        # process started); everything above it up to `last` is in `history`.
        self.floor = floor
        self.last = floor


class _Remembered:
    """Idempotency keys of stored events, each for IDEMPOTENCY_SECONDS."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._ids: dict[str, tuple[str, EventId]] = {}
        self._expiries: collections.deque[tuple[float, str]] = collections.deque()

    def seen(self, idempotency: Idempotency) -> EventId | None:
        now = self._clock()
        while self._expiries and self._expiries[0][0] <= now:
            self._ids.pop(self._expiries.popleft()[1], None)
        fingerprint, event_id = self._ids.get(idempotency.key, (None, None))
        if fingerprint is not None and fingerprint != idempotency.fingerprint:
            raise IdempotencyConflict(CONFLICT)
        return event_id

    def remember(self, idempotency: Idempotency, event_id: EventId) -> None:
        self._ids[idempotency.key] = (idempotency.fingerprint, event_id)
        self._expiries.append((self._clock() + IDEMPOTENCY_SECONDS, idempotency.key))


class MemoryBroker:
    description = "embedded in-memory (history is lost on restart; set REDIS_URL to use Redis)"

    def __init__(self, history_size: int, clock: Callable[[], float] = time.time):
        self._history_size = history_size
        self._clock = clock
        self._boot: EventId = (int(clock() * 1000), 0)
        # One sequence for all channels, so ids order events across channels too.
        self._last: EventId = self._boot
        self._channels: dict[str, _Channel] = {}
        self._deliver: Callable[[Event], None] | None = None
        self._listened: set[str] = set()
        self._announcing: collections.deque[Event] = collections.deque()
        self._announcer: gevent.Greenlet | None = None
        self._idempotency = _Remembered(time.monotonic)  # not the wall clock, which may step

    def start(self, deliver: Callable[[Event], None], history_lost: Callable[[str], None]) -> None:
        """`history_lost` is unused: history here never moves past a listener."""
        self._deliver = deliver

    def publish_once(
        self, channel: str, data: str, event: str | None, idempotency: Idempotency
    ) -> tuple[EventId, bool]:
        stored_id = self._idempotency.seen(idempotency)
        if stored_id is not None:
            return stored_id, False
        event_id = self.publish(channel, data, event)
        self._idempotency.remember(idempotency, event_id)
        return event_id, True

    def publish(self, channel: str, data: str, event: str | None = None) -> EventId:
        state = self._channel(channel)
        self._last = self._next_id(self._last)
        stored = Event(channel, self._last, data, event)
        if len(state.history) == state.history.maxlen:
            state.floor = state.history[0].id
        state.history.append(stored)
        state.last = stored.id
        if channel in self._listened:
            self._announce(stored)
        return stored.id

    def conflicts(self, channel: str, idempotency: Idempotency) -> bool:
        try:
            self._idempotency.seen(idempotency)
        except IdempotencyConflict:
            return True
        return False

    def listen(self, channel: str) -> EventId:
        self._listened.add(channel)
        return self.head(channel)

    def unlisten(self, channel: str) -> None:
        self._listened.discard(channel)

    def head(self, channel: str) -> EventId:
        state = self._channels.get(channel)
        return state.last if state else self._boot

    def replay(self, channel: str, after: EventId | None, limit: int) -> Replay:
        state = self._channels.get(channel) or _Channel(self._boot, 0)
        exact = after is not None and state.floor <= after <= state.last
        start = after if after is not None and exact else state.floor
        newer: list[Event] = []
        if start < state.last:
            for event in reversed(state.history):
                if event.id <= start:
                    break
                newer.append(event)
            newer.reverse()
        page: list[Event] = []
        size = 0
        for event in newer[:limit]:
            size += len(event.frame)
            if page and size > REPLAY_PAGE_BYTES:
                break
            page.append(event)
        return Replay(page, exact, start, more=len(page) < len(newer))

    def recent(self, channel: str, count: int) -> list[Event]:
        state = self._channels.get(channel)
        return list(state.history)[-count:] if state and count > 0 else []

    def check(self) -> None:
        """Always reachable: it lives in this process."""

    def close(self) -> None:
        self._deliver = None
        self._announcing.clear()

    def _announce(self, event: Event) -> None:
        """Hand `event` over from a greenlet of its own, in order, so a publish
        is answered without waiting for its fan-out (issue 12, item 1)."""
        self._announcing.append(event)
        if self._announcer is None or self._announcer.dead:
            self._announcer = gevent.spawn(self._announce_all)

    def _announce_all(self) -> None:
        while self._announcing and self._deliver is not None:
            self._deliver(self._announcing.popleft())

    def _channel(self, channel: str) -> _Channel:
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel(self._boot, self._history_size)
        return state

    def _next_id(self, last: EventId) -> EventId:
        """Like Redis's XADD *: the clock in ms, sequence-numbered, never going back."""
        now = int(self._clock() * 1000)
        return (now, 0) if now > last[0] else (last[0], last[1] + 1)
