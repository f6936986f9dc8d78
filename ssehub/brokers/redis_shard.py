"""One pub/sub connection to one primary, for the listened channels whose slots it owns.

Only its own greenlet touches the connection. Each channel is subscribed on
its own (a cluster refuses one SSUBSCRIBE across slots); a key of the
primary's own slots is subscribed last, so its confirmation means all the
rest are live, and it keeps the connection PINGable with nothing else listened to.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING

import gevent
import gevent.event
import redis

from . import BrokerUnavailable
from .redis_format import channel_of, stream_key

if TYPE_CHECKING:
    from .redis_pubsub import Listener

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05
BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0


def backoff(attempt: int) -> float:
    """Exponential, capped, with jitter so many hubs do not reconnect in step."""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2**attempt) * random.uniform(0.5, 1.0)


class Shard:
    def __init__(self, listener: Listener, owner: str):
        self.listener, self.owner = listener, owner
        self.channels: set[str] = set()
        self.up = gevent.event.Event()
        self._pending: list[tuple[str, str]] = []
        self._greenlet = gevent.spawn(self._run)

    def add(self, channel: str) -> None:
        if channel not in self.channels:
            self.channels.add(channel)
            self._pending.append(("ssubscribe", channel))

    def resubscribe(self, channel: str) -> None:
        if channel in self.channels:
            self._pending.append(("ssubscribe", channel))

    @property
    def dead(self) -> bool:
        return self._greenlet.dead

    def remove(self, channel: str, quietly: bool = False) -> None:
        """Stop listening to `channel` here; `quietly` when its slot has moved
        away, so this primary would answer the unsubscription with an error."""
        if channel in self.channels:
            self.channels.discard(channel)
            if not quietly:
                self._pending.append(("sunsubscribe", channel))

    def stop(self) -> None:
        self._greenlet.kill()

    def _run(self) -> None:
        attempt = 0
        while True:
            started = time.monotonic()
            failure: Exception
            try:
                self._session()
            except (redis.RedisError, OSError, BrokerUnavailable) as error:
                failure = error
            except Exception as error:
                # A bug must not leave every stream open and silent: start over.
                logger.exception("Redis pub/sub listener failed; reconnecting")
                failure = error
            try:
                if not self.listener.lost(self, str(BrokerUnavailable.because(failure))):
                    return  # its channels went to other primaries
            except Exception:
                logger.exception("Redis pub/sub listener failed to move its channels; reconnecting")
            if time.monotonic() - started > BACKOFF_MAX_SECONDS:
                attempt = 0  # it had been up a while: retry promptly
            level = logging.WARNING if attempt == 0 else logging.DEBUG
            logger.log(level, "Redis pub/sub connection lost (%s); reconnecting", self.listener.last_error)
            gevent.sleep(backoff(attempt))
            attempt += 1

    def _session(self) -> None:
        listener = self.listener
        keepalive = listener.routes.keepalive_key(self.owner)
        pubsub = listener.routes.pubsub_client(self.owner).pubsub()
        try:
            listener.on_connect()
            self._pending.clear()  # everything wanted is subscribed here
            for channel in list(self.channels):
                pubsub.ssubscribe(stream_key(channel))
            pubsub.ssubscribe(keepalive)
            ping_sent: float | None = None
            last_heard = time.monotonic()
            while True:
                self._send_pending(pubsub)
                message = pubsub.get_message(timeout=POLL_SECONDS)
                now = time.monotonic()
                if message is not None:
                    last_heard, ping_sent = now, None
                    self._handle(message, keepalive.encode())
                elif ping_sent is not None and now - ping_sent > listener.health_seconds:
                    raise TimeoutError(f"no answer to PING within {listener.health_seconds}s")
                elif ping_sent is None and now - last_heard > listener.health_seconds:
                    pubsub.ping()
                    ping_sent = now
        finally:
            if self.up.is_set():
                logger.info("Redis pub/sub disconnected from %s", self.owner)
            self.up.clear()
            pubsub.close()

    def _send_pending(self, pubsub) -> None:
        while self._pending:
            command, channel = self._pending.pop(0)
            getattr(pubsub, command)(stream_key(channel))

    def _handle(self, message: dict, keepalive: bytes) -> None:
        kind, name = message["type"], message.get("channel", b"")
        if kind == "ssubscribe" and name == keepalive:
            self.listener.confirmed(list(self.channels), fill=True)
            logger.info("Redis pub/sub connected to %s; listening to %d channels", self.owner, len(self.channels))
            self.up.set()
        elif kind == "ssubscribe" and self.up.is_set():
            self.listener.confirmed([channel_of(name)], fill=True)
        elif kind == "sunsubscribe" and name == keepalive:
            raise BrokerUnavailable(f"the slots of {self.owner} moved; subscribing anew")
        elif kind == "sunsubscribe":
            channel = channel_of(name)
            if channel in self.channels:
                # Not asked for: the slot moved to another primary, which takes it over.
                self.listener.rehome([channel], resubscribe=True)
        elif kind == "smessage" and name != keepalive:
            self.listener.notified(name, message["data"])
