"""In-process fan-out from the broker to the subscribers of this process.

One broker subscription per channel per process, however many browsers watch
it; each subscriber gets a bounded queue, and one that falls `queue_size`
events behind is evicted (it resumes by id) rather than slowing the others.
"""

from __future__ import annotations

import collections
import logging
from typing import Iterable

import gevent.event

from .brokers import Broker
from .event import Event

logger = logging.getLogger(__name__)


class Subscription:
    """One stream's live feed: events queue here until its greenlet sends them."""

    __slots__ = ("channels", "queue", "wakeup", "evicted", "closed", "_limit")

    def __init__(self, channels: tuple[str, ...], limit: int):
        self.channels = channels
        self.queue: collections.deque[Event] = collections.deque()
        self.wakeup = gevent.event.Event()
        self.evicted = False
        self.closed = False
        self._limit = limit

    def deliver(self, event: Event) -> None:
        if self.evicted:
            return
        if len(self.queue) >= self._limit:
            # Drop the backlog now: the client resumes from its last id.
            self.evicted = True
            self.queue.clear()
        else:
            self.queue.append(event)
        self.wakeup.set()

    def end(self) -> None:
        """Ask the stream to finish (shutdown); the client will reconnect."""
        self.closed = True
        self.wakeup.set()

    def wait(self, timeout: float) -> list[Event]:
        """Events queued so far, waiting up to `timeout` for the first one."""
        if not self.queue and not self.closed and not self.evicted:
            self.wakeup.wait(timeout)
        self.wakeup.clear()
        events = list(self.queue)
        self.queue.clear()
        return events


class Hub:
    def __init__(self, broker: Broker, queue_size: int):
        self._broker = broker
        self._queue_size = queue_size
        self._by_channel: dict[str, set[Subscription]] = {}
        self._closing = False
        self.evictions = 0
        self.delivered = 0
        broker.start(self.dispatch, self.resync)

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        """Register a live feed; its events queue from this moment on."""
        subscription = Subscription(tuple(channels), self._queue_size)
        if self._closing:
            subscription.end()
        for channel in subscription.channels:
            subscribers = self._by_channel.get(channel)
            if subscribers is None:
                subscribers = self._by_channel[channel] = set()
                try:
                    self._broker.listen(channel)
                except BaseException:
                    del self._by_channel[channel]
                    self.unsubscribe(subscription)
                    raise
            subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        for channel in subscription.channels:
            subscribers = self._by_channel.get(channel)
            if subscribers is None:
                continue
            subscribers.discard(subscription)
            if not subscribers:
                del self._by_channel[channel]
                self._broker.unlisten(channel)

    def dispatch(self, event: Event) -> None:
        """Hand one event to every local subscriber of its channel."""
        subscribers = self._by_channel.get(event.channel)
        if not subscribers:
            return
        for subscription in tuple(subscribers):
            if subscription.evicted:
                continue
            subscription.deliver(event)
            if subscription.evicted:
                self.evictions += 1
                logger.info("dropped a subscriber %d events behind on %s", self._queue_size, event.channel)
            else:
                self.delivered += 1

    def resync(self, channel: str) -> None:
        """End the streams on `channel`; they resume by id and learn what they missed."""
        for subscription in list(self._by_channel.get(channel, ())):
            subscription.end()

    def shutdown(self) -> None:
        """End every stream so its browser reconnects, to another process if there is one."""
        self._closing = True
        for subscribers in list(self._by_channel.values()):
            for subscription in list(subscribers):
                subscription.end()

    @property
    def subscriber_count(self) -> int:
        return len({s for subscribers in self._by_channel.values() for s in subscribers})

    @property
    def channel_count(self) -> int:
        return len(self._by_channel)
