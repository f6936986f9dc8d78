"""One stream's live feed: handed straight to its connection, or queued.

A stream that the server handed over (direct.DetachedStream) and that is not
draining gets each event sent from the fan-out itself. Otherwise events queue
until the stream's greenlet (or the detached stream's drainer) sends them,
and a subscriber that falls `limit` events behind is evicted (it resumes by
id) rather than slowing the others.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import gevent
import gevent.event

from .event import Event

if TYPE_CHECKING:
    from .direct import DetachedStream


class Subscription:
    __slots__ = (
        "channels",
        "queue",
        "wakeup",
        "evicted",
        "closed",
        "expired",
        "heartbeat_due",
        "active",
        "stream",
        "expires_at",
        "_limit",
        "_expiry",
    )

    def __init__(self, channels: tuple[str, ...], limit: int):
        self.channels = channels
        # A list, not a deque: a deque's first block alone is 600 bytes, paid
        # by every idle stream (issue 12, item 5).
        self.queue: list[Event] = []
        self.wakeup = gevent.event.Event()
        self.evicted = False
        self.closed = False
        # Its token ran out (expire_at): the stream ends with ssehub.token-expired.
        self.expired = False
        # Set by the hub's heartbeat when a stream with a greenlet was idle.
        self.heartbeat_due = False
        # Something was sent or queued since the last heartbeat tick.
        self.active = False
        # The connection, once the server handed it over.
        self.stream: DetachedStream | None = None
        # When its token runs out (epoch seconds; None: never).
        self.expires_at: float | None = None
        self._limit = limit
        self._expiry: gevent.libev.corecext.timer | None = None

    def deliver(self, event: Event) -> int:
        """Send or queue `event`: the bytes written to the socket now (0: queued,
        and counted when written)."""
        if self.evicted:
            return 0
        self.active = True
        stream = self.stream
        if stream is not None and stream.idle and not self.queue:
            return stream.send(event)
        if len(self.queue) >= self._limit:
            # Drop the backlog now: the client resumes from its last id.
            self.evicted = True
            self.queue.clear()
        else:
            self.queue.append(event)
        self.wakeup.set()
        return 0

    def heartbeat(self) -> None:
        """The hub's heartbeat tick: keep an idle stream's connection warm."""
        if self.active:
            self.active = False
            return
        self.active = True
        stream = self.stream
        if stream is None:
            self.heartbeat_due = True
            self.wakeup.set()
        elif stream.idle:
            stream.send_heartbeat()

    def close(self) -> None:
        """Ask the stream to finish (shutdown); the client will reconnect."""
        self.closed = True
        self._end_soon()

    def expire_at(self, when: float) -> None:
        """End the stream at `when` (epoch seconds), when its token runs out."""
        self.expires_at = when
        timer = gevent.get_hub().loop.timer(max(0.0, when - time.time()))
        timer.start(self.expire)
        self._expiry = timer

    def expire(self) -> None:
        self.expired = True
        self._end_soon()

    def _end_soon(self) -> None:
        """Wake the stream's greenlet to end it, or end a detached stream that is not draining now."""
        self.wakeup.set()
        stream = self.stream
        if stream is not None and stream.idle:
            stream.end()

    def cancel_expiry(self) -> None:
        """Stop the expiry timer of a stream that ended (it holds the subscription)."""
        if self._expiry is not None:
            self._expiry.stop()
            self._expiry = None

    def wait(self, timeout: float | None = None) -> list[Event]:
        """Events queued so far, waiting (up to `timeout`) for something to do."""
        if not (self.queue or self.closed or self.evicted or self.expired or self.heartbeat_due):
            self.wakeup.wait(timeout)
        return self.take()

    def take(self) -> list[Event]:
        """The events queued so far, without waiting."""
        self.wakeup.clear()
        events, self.queue = self.queue, []
        return events

    def take_heartbeat(self) -> bool:
        """Whether a heartbeat is due, once."""
        due, self.heartbeat_due = self.heartbeat_due, False
        return due
