"""In-process fan-out from the broker to the subscribers of this process.

One broker subscription per channel per process, however many browsers watch
it; each subscriber gets a bounded queue, and one that falls `queue_size`
events behind is evicted (it resumes by id) rather than slowing the others.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable

import gevent.event

from .brokers import Broker, BrokerUnavailable
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

    def close(self) -> None:
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


class _Feed:
    """The local subscribers of one channel, and whether the broker listens to it yet.

    Only the first subscriber asks the broker to listen; later ones join at
    once and wait for that answer, so a channel is never unlistened while a
    subscriber is on its way in (issue 8, item 2).
    """

    __slots__ = ("subscribers", "listening")

    def __init__(self) -> None:
        self.subscribers: set[Subscription] = set()
        self.listening = gevent.event.AsyncResult()


class Hub:
    def __init__(self, broker: Broker, queue_size: int):
        self._broker = broker
        self._queue_size = queue_size
        self._feeds: dict[str, _Feed] = {}
        self._closing = False
        # Kept as counts so /metrics and /readyz cost O(1) (issue 9).
        self.subscriber_count = 0
        self.evictions = 0
        self.delivered = 0
        broker.start(self.dispatch, self.end_streams)

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        """Register a live feed; its events queue from this moment on.

        Raises BrokerUnavailable when the broker cannot listen; the stream
        then ends and its client resumes by id.
        """
        subscription = Subscription(tuple(channels), self._queue_size)
        if self._closing:
            subscription.close()
        try:
            for channel in subscription.channels:
                self._join(channel, subscription)
        except BaseException:
            self._leave(subscription)
            raise
        self.subscriber_count += 1
        return subscription

    def _join(self, channel: str, subscription: Subscription) -> None:
        feed = self._feeds.get(channel)
        if feed is not None:
            feed.subscribers.add(subscription)
            feed.listening.get()  # raises what the first subscriber's listen raised
            return
        feed = self._feeds[channel] = _Feed()
        feed.subscribers.add(subscription)
        try:
            self._broker.listen(channel)
        except BaseException as error:
            # Everyone who joined meanwhile fails too, rather than wait on a
            # channel nobody listens to; their clients reconnect and resume.
            del self._feeds[channel]
            reason = (
                error if isinstance(error, BrokerUnavailable) else BrokerUnavailable(f"listening to {channel} failed")
            )
            feed.listening.set_exception(reason)
            raise
        feed.listening.set(True)

    def unsubscribe(self, subscription: Subscription) -> None:
        """Release a subscription that `subscribe` returned."""
        self.subscriber_count -= 1
        self._leave(subscription)

    def _leave(self, subscription: Subscription) -> None:
        for channel in subscription.channels:
            feed = self._feeds.get(channel)
            if feed is None or subscription not in feed.subscribers:
                continue  # never joined, or joined a feed whose listen failed
            feed.subscribers.discard(subscription)
            if not feed.subscribers and feed.listening.successful():
                del self._feeds[channel]
                self._broker.unlisten(channel)

    def dispatch(self, event: Event) -> None:
        """Hand one event to every local subscriber of its channel."""
        feed = self._feeds.get(event.channel)
        if feed is None:
            return
        for subscription in tuple(feed.subscribers):
            if subscription.evicted:
                continue
            subscription.deliver(event)
            if subscription.evicted:
                self.evictions += 1
                logger.info("dropped a subscriber %d events behind on %s", self._queue_size, event.channel)
            else:
                self.delivered += 1

    def end_streams(self, channel: str) -> None:
        """End the streams on `channel`; they resume by id and learn what they missed."""
        feed = self._feeds.get(channel)
        for subscription in tuple(feed.subscribers) if feed else ():
            subscription.close()

    def shutdown(self) -> None:
        """End every stream so its browser reconnects, to another process if there is one."""
        self._closing = True
        for feed in tuple(self._feeds.values()):
            for subscription in tuple(feed.subscribers):
                subscription.close()

    @property
    def channel_count(self) -> int:
        return len(self._feeds)
