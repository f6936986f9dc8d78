"""One stream's live feed: straight to its socket while parked, else a bounded queue.

A stream whose greenlet waits with nothing queued is parked: the hub sends
each event to its socket from the fan-out loop (direct.DirectWriter) and the
greenlet stays asleep. Otherwise events queue, and a subscriber that falls
`limit` events behind is evicted (it resumes by id) rather than slowing the others.
"""

from __future__ import annotations

import gevent.event

from .direct import DirectWriter
from .event import Event


class Subscription:
    __slots__ = ("channels", "queue", "wakeup", "evicted", "closed", "heartbeat_due", "active", "_limit", "_writer")

    def __init__(self, channels: tuple[str, ...], limit: int):
        self.channels = channels
        # A list, not a deque: a deque's first block alone is 600 bytes, paid
        # by every idle stream (issue 12, item 5).
        self.queue: list[Event] = []
        self.wakeup = gevent.event.Event()
        self.evicted = False
        self.closed = False
        # Set by the hub's heartbeat when the stream was idle and not parked.
        self.heartbeat_due = False
        # Something was sent or queued since the last heartbeat tick.
        self.active = False
        self._limit = limit
        self._writer: DirectWriter | None = None

    def deliver(self, event: Event) -> None:
        if self.evicted:
            return
        self.active = True
        writer = self._writer
        if writer is not None:
            if not writer.send(event):
                self._unpark()  # the socket is full or gone: the greenlet takes over
            return
        if len(self.queue) >= self._limit:
            # Drop the backlog now: the client resumes from its last id.
            self.evicted = True
            self.queue.clear()
        else:
            self.queue.append(event)
        self.wakeup.set()

    def heartbeat(self) -> None:
        """The hub's heartbeat tick: keep an idle stream's connection warm."""
        if self.active:
            self.active = False
            return
        self.active = True
        writer = self._writer
        if writer is None:
            self.heartbeat_due = True
            self.wakeup.set()
        elif not writer.send_heartbeat():
            self._unpark()

    def close(self) -> None:
        """Ask the stream to finish (shutdown); the client will reconnect."""
        self.closed = True
        self._unpark()

    def wait(self, writer: DirectWriter | None = None, timeout: float | None = None) -> list[Event]:
        """Events queued so far, waiting (up to `timeout`) for something to do;
        with a `writer`, events go straight out while this waits."""
        if not (self.queue or self.closed or self.evicted or self.heartbeat_due):
            if writer is not None and not writer.pending and not writer.broken:
                self._writer = writer
            self.wakeup.wait(timeout)
            self._writer = None
        self.wakeup.clear()
        events, self.queue = self.queue, []
        return events

    def take_heartbeat(self) -> bool:
        """Whether a heartbeat is due, once."""
        due, self.heartbeat_due = self.heartbeat_due, False
        return due

    def _unpark(self) -> None:
        self._writer = None
        self.wakeup.set()
