"""The pub/sub side of a hub process, kept alive through Redis failures.

It listens to every channel that has a local subscriber, over one connection
per primary that owns a listened channel's slot (one in all, without a
cluster; redis_shard.Shard), hands each event to the hub once and in order,
and after any (re)subscription fills the gap from the channel's Stream, so an
outage, a restart, a failover or a slot moved elsewhere loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Protocol

import gevent
import gevent.event
import redis

from ..cursor import EventId, parse_id
from ..event import Event
from . import BrokerUnavailable
from .history import PAGE, ReplayFn, by_id, pages_from
from .redis_format import channel_of, event_from_parts
from .redis_shard import Shard

logger = logging.getLogger(__name__)


class Routes(Protocol):
    """Which primary owns a channel, and a pub/sub client for it."""

    cluster: bool

    def owner(self, channel: str) -> str: ...

    def pubsub_client(self, owner: str) -> redis.Redis: ...

    def keepalive_key(self, owner: str) -> str: ...

    def refresh(self) -> None: ...


def _not_started(_: object) -> None:
    raise RuntimeError("the listener hands nothing over before Listener.start()")


class Listener:
    def __init__(
        self,
        routes: Routes,
        on_connect: Callable[[], None],
        replay: ReplayFn,
        health_seconds: float,
        confirm_seconds: float,
        connected_seconds: float,
    ):
        """`on_connect` runs before each (re)subscription; `replay` reads
        history. A subscription fails when its connection is not up within
        `connected_seconds`, or Redis does not confirm it within `confirm_seconds`."""
        self.routes = routes
        self.on_connect = on_connect
        self._replay = replay
        self.health_seconds = health_seconds
        self._confirm_seconds = confirm_seconds
        self._connected_seconds = connected_seconds
        # Per listened channel: the newest id handed to the hub.
        self._positions: dict[str, EventId] = {}
        self._confirmations: dict[str, gevent.event.Event] = {}
        self._shards: dict[str, Shard] = {}
        self._deliver: Callable[[Event], None] = _not_started
        self._history_lost: Callable[[str], None] = _not_started
        self.last_error = "not connected yet"

    @property
    def connected(self) -> bool:
        """Every connection is up: the one connection, or each one to a primary with listened channels."""
        shards = self._shards.values()
        return (self.routes.cluster or bool(shards)) and all(shard.up.is_set() for shard in shards)

    def start(self, deliver: Callable[[Event], None], history_lost: Callable[[str], None]) -> None:
        self._deliver, self._history_lost = deliver, history_lost
        if not self.routes.cluster:
            self._shard(self.routes.owner(""))  # one connection, kept up even with nothing to listen to

    def stop(self) -> None:
        for shard in list(self._shards.values()):
            shard.stop()
        self._shards.clear()

    def subscribe(self, channel: str, position: EventId) -> None:
        """Subscribe and wait for Redis to confirm, so later reads of history meet live events."""
        shard = self._shard(self.routes.owner(channel))
        if not shard.up.wait(self._connected_seconds):
            raise BrokerUnavailable(f"pub/sub reconnecting: {self.last_error}")
        self._positions[channel] = position
        confirmed = self._confirmations.setdefault(channel, gevent.event.Event())
        shard.add(channel)
        if not confirmed.wait(self._confirm_seconds):
            self.unsubscribe(channel)
            raise BrokerUnavailable(f"Redis did not confirm the subscription to {channel} in time")

    def unsubscribe(self, channel: str) -> None:
        self._positions.pop(channel, None)
        for shard in self._shards.values():
            shard.remove(channel)

    # What the shards report.

    def lost(self, shard: Shard, error: str) -> bool:
        """`shard`'s connection failed: its primary may have changed, so each
        of its channels goes to whichever primary owns it now. False when the
        shard has nothing left to listen to, and ends."""
        self.last_error = error
        if not self.routes.cluster:
            return True
        self.rehome(list(shard.channels))
        if shard.channels:
            return True
        if self._shards.get(shard.owner) is shard:
            del self._shards[shard.owner]
        return False

    def rehome(self, channels: list[str], resubscribe: bool = False) -> None:
        """Move `channels` to their owners now (a failover, a slot moved);
        `resubscribe` those whose owner is unchanged (Redis unsubscribed them,
        and the map of slots may not show the move yet)."""
        try:
            self.routes.refresh()
            owners = {channel: self.routes.owner(channel) for channel in channels}
        except BrokerUnavailable as error:
            logger.debug("could not read the cluster's slots: %s", error)
            return  # the shard's next session tries again
        for channel, owner in owners.items():
            for name, shard in list(self._shards.items()):
                if channel not in shard.channels:
                    continue
                if name != owner:
                    shard.remove(channel, quietly=True)
                    if channel in self._positions:
                        self._shard(owner).add(channel)
                elif resubscribe:
                    shard.resubscribe(channel)

    def confirmed(self, channels: list[str], fill: bool) -> None:
        """Redis confirmed `channels`: fill what was missed (merged by id), then wake their waiters."""
        if fill:
            for event in by_id([self._history(channel) for channel in channels]):
                self._hand_over(event)
        for channel in channels:
            waiter = self._confirmations.pop(channel, None)
            if waiter is not None:
                waiter.set()

    def notified(self, key: bytes, payload: bytes) -> None:
        parts = payload.split(b"\n", 3)
        if len(parts) != 4 or parse_id(parts[0].decode("ascii", "replace")) is None:
            # Not ssehub_publish's notification (another library version,
            # or an SPUBLISH by hand): the stream itself says what is new.
            self._catch_up(channel_of(key))
            return
        raw_id, raw_previous, raw_type, data = parts
        self._receive(event_from_parts(channel_of(key), raw_id, raw_type, data), raw_previous)

    def _shard(self, owner: str) -> Shard:
        shard = self._shards.get(owner)
        if shard is None or shard.dead:
            replacement = self._shards[owner] = Shard(self, owner)
            for channel in shard.channels if shard else ():
                replacement.add(channel)
            shard = replacement
        return shard

    def _receive(self, event: Event, raw_previous: bytes) -> None:
        """Hand over a notified event, or fill from history when it does not follow the last one."""
        position = self._positions.get(event.channel)
        if position is None or event.id <= position:
            return  # not listened to, or already handed over from history
        if parse_id(raw_previous.decode("ascii", "replace")) == position:
            self._hand_over(event)
            return
        # A gap, or a history lost and begun anew (DEL, FLUSHALL, eviction):
        # the stream tells which, and the history includes this event.
        self._catch_up(event.channel)

    def _catch_up(self, channel: str) -> None:
        """Hand over everything on `channel` after the last event handed over."""
        for event in self._history(channel):
            self._hand_over(event)

    def _history(self, channel: str) -> Iterator[Event]:
        """What was published on `channel` after the position handed over last.

        If the history was trimmed past that position mid-way, HistoryMoved
        ends the session; the next one starts here again and ends the streams.
        """
        position = self._positions.get(channel)
        if position is None:
            return iter(())
        first = self._replay(channel, position, PAGE)
        if not first.exact:
            # History moved past us (trimmed during an outage, or lost): the
            # subscribers' streams end and resume by id, and are told.
            logger.warning("history of %s was trimmed or lost; its streams will resume", channel)
            self._positions[channel] = first.start
            self._history_lost(channel)
        return pages_from(self._replay, channel, first)

    def _hand_over(self, event: Event) -> None:
        position = self._positions.get(event.channel)
        if position is None or event.id <= position:
            return
        self._positions[event.channel] = event.id
        self._deliver(event)
