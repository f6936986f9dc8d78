"""In-process fan-out from the broker to the subscribers of this process.

One broker subscription per channel per process, however many browsers watch
it. The hub also knows each listened channel's newest id, so a new or
resuming subscriber usually needs no broker round trip at all, and identical
reads that do reach the broker share one call (issue 12, item 4).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import gevent
import gevent.event

from .brokers import Broker, BrokerUnavailable, Replay
from .cursor import EventId
from .event import Event
from .meters import Meters
from .shared_calls import SharedCalls
from .subscription import Subscription

logger = logging.getLogger(__name__)

# Deliveries between two chances for other greenlets to run during a fan-out.
FANOUT_SLICE = 256
# Socket writes of a fan-out timed together, at the last one: a clock read per
# write would cost a tenth of the write, and 16 writes take well under the
# latency histogram's smallest bucket.
TIMED_WRITES = 16


class _Feed:
    """The local subscribers of one channel, whether the broker listens to it
    yet, and the newest id handed over on it (None: not known).

    Only the first subscriber asks the broker to listen; later ones join at
    once and wait for that answer, so a channel is never unlistened while a
    subscriber is on its way in (issue 8, item 2).
    """

    __slots__ = ("subscribers", "listening", "head")

    def __init__(self) -> None:
        self.subscribers: set[Subscription] = set()
        self.listening = gevent.event.AsyncResult()
        self.head: EventId | None = None


class Hub:
    def __init__(self, broker: Broker, queue_size: int, heartbeat_seconds: float = 15.0):
        self._broker = broker
        self._queue_size = queue_size
        self._feeds: dict[str, _Feed] = {}
        self._subscriptions: set[Subscription] = set()
        self._reads = SharedCalls()
        self._closing = False
        # Kept as counts so /metrics and /readyz cost O(1) (issue 9).
        self.evictions = 0
        self.delivered = 0
        # What the streams count as they write (bytes, latency, resumes).
        self.meters = Meters()
        broker.start(self.dispatch, self.end_streams)
        # One timer for every stream, instead of a timeout per wait (issue 12).
        self._heartbeat = gevent.spawn(self._beat, heartbeat_seconds / 2)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        """Register a live feed; its events queue from this moment on.

        Raises BrokerUnavailable when the broker cannot listen; the stream
        then ends and its client resumes by id.
        """
        subscription = Subscription(tuple(channels), self._queue_size)
        if self._closing:
            subscription.close()
        self._subscriptions.add(subscription)  # so shutdown reaches it while it joins
        try:
            for channel in subscription.channels:
                self._join(channel, subscription)
        except BaseException:
            self.unsubscribe(subscription)
            raise
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
            head = self._broker.listen(channel)
        except BaseException as error:
            # Everyone who joined meanwhile fails too, rather than wait on a
            # channel nobody listens to; their clients reconnect and resume.
            del self._feeds[channel]
            reason = (
                error if isinstance(error, BrokerUnavailable) else BrokerUnavailable(f"listening to {channel} failed")
            )
            feed.listening.set_exception(reason)
            raise
        # Events after `head` may have been handed over while listen waited.
        if feed.head is None or head > feed.head:
            feed.head = head
        feed.listening.set(True)

    def unsubscribe(self, subscription: Subscription) -> None:
        """Release a subscription that `subscribe` returned."""
        subscription.cancel_expiry()
        self._subscriptions.discard(subscription)
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

    def head(self, channel: str) -> EventId:
        """Where a client that starts now stands on `channel`; from memory when
        this process listens to it."""
        feed = self._feeds.get(channel)
        if feed is not None and feed.head is not None:
            return feed.head
        return self._reads.call(("head", channel), self._broker.head, channel)

    def replay(self, channel: str, after: EventId | None, limit: int) -> Replay:
        """The broker's replay, except that a client already at the newest id
        this process has handed over needs no broker call."""
        feed = self._feeds.get(channel)
        if feed is not None and after is not None and after == feed.head:
            return Replay([], exact=True, start=after)
        return self._reads.call(("replay", channel, after, limit), self._broker.replay, channel, after, limit)

    def dispatch(self, event: Event) -> None:
        """Hand one event to every local subscriber of its channel."""
        feed = self._feeds.get(event.channel)
        if feed is None or (feed.head is not None and event.id <= feed.head):
            return
        feed.head = event.id
        writes = written = 0  # since the last timing
        for count, subscription in enumerate(tuple(feed.subscribers), 1):
            if count % FANOUT_SLICE == 0:
                self.meters.fanned_out(event, writes, written)
                writes = written = 0
                gevent.sleep(0)  # let a publish that is waiting answer (issue 12, item 1)
            if subscription.evicted:
                continue
            size = subscription.deliver(event)
            if size:
                writes += 1
                written += size
                if writes == TIMED_WRITES:
                    self.meters.fanned_out(event, writes, written)
                    writes = written = 0
            if subscription.evicted:
                self.evictions += 1
                logger.info("dropped a subscriber %d events behind on %s", self._queue_size, event.channel)
            else:
                self.delivered += 1
        self.meters.fanned_out(event, writes, written)
        event.forget_chunk()

    def end_streams(self, channel: str) -> None:
        """End the streams on `channel`; they resume by id and learn what they missed."""
        feed = self._feeds.get(channel)
        if feed is None:
            return
        feed.head = None  # the history it pointed into is gone
        for subscription in tuple(feed.subscribers):
            subscription.close()

    def shutdown(self) -> None:
        """End every stream so its browser reconnects, to another process if there is one."""
        self._closing = True
        for subscription in tuple(self._subscriptions):
            subscription.close()

    def close(self) -> None:
        self._heartbeat.kill()

    @property
    def channel_count(self) -> int:
        return len(self._feeds)

    def _beat(self, interval: float) -> None:
        while True:
            gevent.sleep(interval)
            for subscription in tuple(self._subscriptions):
                subscription.heartbeat()
