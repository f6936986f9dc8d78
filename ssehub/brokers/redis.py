"""The Redis broker: history in one Stream per channel, fan-out via sharded pub/sub.

Writes go through the Redis Functions in ssehub.lua (atomic append, trim,
floor and notify); commands share a small bounded pool; one pub/sub
connection per process listens for every channel (redis_pubsub.Listener).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Callable, Iterator
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..cursor import EventId, format_id
from ..event import Event
from . import BrokerUnavailable, Replay
from .redis_format import event_from_entry, parse_stream_id, stream_key
from .redis_pubsub import Listener

logger = logging.getLogger(__name__)

# Connections for commands, shared by every request of this process.
COMMAND_POOL_SIZE = 16
# A publish or replay that takes longer than this fails with 503 instead of hanging.
COMMAND_TIMEOUT_SECONDS = 2.0
_LUA_PATH = os.path.join(os.path.dirname(__file__), "ssehub.lua")


class RedisBroker:
    def __init__(self, url: str, history_size: int, max_event_bytes: int, health_seconds: float = 5.0):
        parts = urlsplit(url)
        self.description = f"Redis at {parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path or ''}"
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=COMMAND_POOL_SIZE,
            timeout=COMMAND_TIMEOUT_SECONDS,
            socket_timeout=COMMAND_TIMEOUT_SECONDS,
            socket_connect_timeout=COMMAND_TIMEOUT_SECONDS,
            # One immediate retry for a pooled connection that died with a
            # Redis restart; never after a timeout, which could publish twice.
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
        self._client = redis.Redis(connection_pool=pool)
        with open(_LUA_PATH) as source:
            self._library = (
                source.read()
                .replace("__HISTORY_SIZE__", str(history_size))
                .replace("__MAX_EVENT_BYTES__", str(max_event_bytes))
                .replace("__TRIM_SLACK__", str(max(1, history_size // 10)))
            )
        self._listener = Listener(url, self, health_seconds, confirm_seconds=COMMAND_TIMEOUT_SECONDS)

    def start(self, deliver: Callable[[Event], None], resync: Callable[[str], None]) -> None:
        self._listener.start(deliver, resync)

    def publish(self, channel: str, data: str, type: str | None = None) -> EventId:
        return parse_stream_id(self._call("ssehub_publish", channel, data, type or ""))

    def listen(self, channel: str) -> None:
        # The head is read before subscribing; the listener fills in anything
        # published between the two once the subscription is confirmed.
        self._listener.add(channel, self.head(channel))

    def unlisten(self, channel: str) -> None:
        self._listener.remove(channel)

    def head(self, channel: str) -> EventId:
        return parse_stream_id(self._call("ssehub_head", channel))

    def replay(self, channel: str, after: EventId | None, limit: int) -> Replay:
        exact, start, entries = self._call("ssehub_replay", channel, format_id(after) if after else "", limit)
        events = [event_from_entry(channel, entry_id, fields) for entry_id, fields in entries]
        return Replay(events, bool(exact), parse_stream_id(start))

    def recent(self, channel: str, count: int) -> list[Event]:
        with _unavailable_on_redis_errors():
            entries = self._client.xrevrange(stream_key(channel), count=count)
        return [event_from_entry(channel, entry_id, _flat(fields)) for entry_id, fields in reversed(entries)]

    def check(self) -> None:
        with _unavailable_on_redis_errors():
            self._client.ping()
        if not self._listener.connected:
            raise BrokerUnavailable(f"pub/sub reconnecting: {self._listener.last_error}")

    def load_functions(self) -> None:
        """(Re)load ssehub.lua; Redis loses it on a restart without persistence."""
        self._client.function_load(self._library, replace=True)

    def close(self) -> None:
        self._listener.stop()
        self._client.connection_pool.disconnect()

    def _call(self, function: str, channel: str, *args):
        key = stream_key(channel)
        with _unavailable_on_redis_errors():
            try:
                return self._client.fcall(function, 1, key, *args)
            except redis.ResponseError as error:
                if "Function not found" not in str(error):
                    raise
                self.load_functions()
                return self._client.fcall(function, 1, key, *args)


def _flat(fields: dict[bytes, bytes]) -> list[bytes]:
    return [item for pair in fields.items() for item in pair]


@contextlib.contextmanager
def _unavailable_on_redis_errors() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as error:
        raise BrokerUnavailable.because(error) from None
