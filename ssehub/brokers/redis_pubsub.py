"""The one pub/sub connection of a hub process, kept alive through Redis failures.

It subscribes to every channel that has a local subscriber, hands each event
to the hub once and in order, and after any (re)subscription fills the gap from
the channel's Stream, so an outage, a restart of Redis or a killed connection
loses nothing. Only its own greenlet touches the connection.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator

import gevent
import gevent.event
import redis

from ..cursor import EventId, parse_id
from ..event import Event
from . import BrokerUnavailable
from .history import PAGE, ReplayFn, by_id, pages_from
from .redis_format import channel_of, event_from_parts, stream_key

logger = logging.getLogger(__name__)

# Kept subscribed so the connection can always be PINGed (redis-py reads
# nothing on a pub/sub connection with no subscription).
SENTINEL = "ssehub:listener"
POLL_SECONDS = 0.05
BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0


def backoff(attempt: int) -> float:
    """Exponential, capped, with jitter so many hubs do not reconnect in step."""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2**attempt) * random.uniform(0.5, 1.0)


def _not_started(_: object) -> None:
    raise RuntimeError("the listener hands nothing over before Listener.start()")


class Listener:
    def __init__(
        self,
        client: redis.Redis,
        on_connect: Callable[[], None],
        replay: ReplayFn,
        health_seconds: float,
        confirm_seconds: float,
        connected_seconds: float,
    ):
        """`client` is the listener's own; `on_connect` runs before each
        (re)subscription; `replay` reads history over `client`. A subscription
        fails when the listener is not connected within `connected_seconds`,
        or Redis does not confirm it within `confirm_seconds`."""
        self._redis = client
        self._on_connect = on_connect
        self._replay = replay
        self._health_seconds = health_seconds
        self._confirm_seconds = confirm_seconds
        self._connected_seconds = connected_seconds
        # Per listened channel: the newest id handed to the hub.
        self._positions: dict[str, EventId] = {}
        self._pending: list[tuple[str, str]] = []
        self._confirmations: dict[str, gevent.event.Event] = {}
        self._up = gevent.event.Event()
        self._deliver: Callable[[Event], None] = _not_started
        self._history_lost: Callable[[str], None] = _not_started
        self._greenlet: gevent.Greenlet | None = None
        self.last_error = "not connected yet"

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    def start(self, deliver: Callable[[Event], None], history_lost: Callable[[str], None]) -> None:
        self._deliver, self._history_lost = deliver, history_lost
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill()
        self._redis.close()

    def subscribe(self, channel: str, position: EventId) -> None:
        """Subscribe and wait for Redis to confirm, so later reads of history meet live events."""
        if not self._up.wait(self._connected_seconds):
            raise BrokerUnavailable(f"pub/sub reconnecting: {self.last_error}")
        self._positions[channel] = position
        confirmed = self._confirmations.setdefault(channel, gevent.event.Event())
        self._pending.append(("ssubscribe", channel))
        if not confirmed.wait(self._confirm_seconds):
            self.unsubscribe(channel)
            raise BrokerUnavailable(f"Redis did not confirm the subscription to {channel} in time")

    def unsubscribe(self, channel: str) -> None:
        self._positions.pop(channel, None)
        self._pending.append(("sunsubscribe", channel))

    def _run(self) -> None:
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                self._session()
            except (redis.RedisError, OSError, BrokerUnavailable) as error:
                self.last_error = str(BrokerUnavailable.because(error))
            except Exception as error:
                # A bug must not leave every stream open and silent: start over.
                logger.exception("Redis pub/sub listener failed; reconnecting")
                self.last_error = str(BrokerUnavailable.because(error))
            if time.monotonic() - started > BACKOFF_MAX_SECONDS:
                attempt = 0  # it had been up a while: retry promptly
            level = logging.WARNING if attempt == 0 else logging.DEBUG
            logger.log(level, "Redis pub/sub connection lost (%s); reconnecting", self.last_error)
            gevent.sleep(backoff(attempt))
            attempt += 1

    def _session(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            self._on_connect()
            self._pending.clear()  # everything wanted is subscribed here
            # The sentinel goes last: its confirmation means all the rest are live.
            pubsub.ssubscribe(*(stream_key(channel) for channel in self._positions), SENTINEL)
            ping_sent: float | None = None
            last_heard = time.monotonic()
            while True:
                self._send_pending(pubsub)
                message = pubsub.get_message(timeout=POLL_SECONDS)
                now = time.monotonic()
                if message is not None:
                    last_heard, ping_sent = now, None
                    self._handle(message)
                elif ping_sent is not None and now - ping_sent > self._health_seconds:
                    raise TimeoutError(f"no answer to PING within {self._health_seconds}s")
                elif ping_sent is None and now - last_heard > self._health_seconds:
                    pubsub.ping()
                    ping_sent = now
        finally:
            if self._up.is_set():
                logger.info("Redis pub/sub disconnected")
            self._up.clear()
            pubsub.close()

    def _send_pending(self, pubsub) -> None:
        while self._pending:
            command, channel = self._pending.pop(0)
            getattr(pubsub, command)(stream_key(channel))

    def _handle(self, message: dict) -> None:
        kind, name = message["type"], message.get("channel", b"")
        if kind == "ssubscribe" and name == SENTINEL.encode():
            # Fill everything missed while disconnected, merged across channels by id.
            for event in by_id([self._history(channel) for channel in list(self._positions)]):
                self._hand_over(event)
            for confirmed in self._confirmations.values():
                confirmed.set()
            self._confirmations.clear()
            logger.info("Redis pub/sub connected; listening to %d channels", len(self._positions))
            self._up.set()
        elif kind == "ssubscribe" and self._up.is_set():
            channel = channel_of(name)
            self._catch_up(channel)
            confirmed = self._confirmations.pop(channel, None)
            if confirmed is not None:
                confirmed.set()
        elif kind == "smessage" and name != SENTINEL.encode():
            parts = message["data"].split(b"\n", 3)
            if len(parts) != 4 or parse_id(parts[0].decode("ascii", "replace")) is None:
                # Not ssehub_publish's notification (another library version,
                # or an SPUBLISH by hand): the stream itself says what is new.
                self._catch_up(channel_of(name))
                return
            raw_id, raw_previous, raw_type, data = parts
            self._receive(event_from_parts(channel_of(name), raw_id, raw_type, data), raw_previous)

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
