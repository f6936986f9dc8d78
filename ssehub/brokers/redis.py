"""The Redis broker: history in one Stream per channel, fan-out via sharded pub/sub.

Writes go through the Redis Functions in ssehub.lua (atomic append, trim,
floor and notify), each sent once; commands share a small bounded pool; one
pub/sub connection per process listens for every channel (redis_pubsub.Listener).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import gevent.lock
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..config import ConfigError
from ..cursor import EventId
from ..event import Event
from . import BrokerUnavailable, PublishOutcomeUnknown, Replay
from .redis_format import event_from_entry, parse_stream_id, stream_key
from .redis_functions import Functions, unavailable_on_redis_errors
from .redis_library import Library, RedisTooOld, library_source
from .redis_pubsub import Listener

logger = logging.getLogger(__name__)

# Connections for commands, shared by every request of this process.
COMMAND_POOL_SIZE = 16
# Reads (heads, replays) in flight at once; the rest of the pool stays free for
# publishes. A herd of resuming streams queues here, however long, instead of
# failing after the pool's 2 s wait and reconnecting into the same herd.
CONCURRENT_READS = COMMAND_POOL_SIZE // 2
# A publish or replay that takes longer than this fails with 503 instead of hanging.
COMMAND_TIMEOUT_SECONDS = 2.0
# How long a new channel's first subscriber waits for Redis to confirm the
# subscription. Longer than a command: during a reconnect storm the process
# itself may take seconds to get to the confirmation, and failing then would
# send every waiting stream back into the storm (issue 12, item 4).
CONFIRM_SECONDS = 10.0
# Policies under which Redis may evict keys without a TTL, such as ssehub's streams.
EVICTING_POLICIES = ("allkeys-lru", "allkeys-lfu", "allkeys-random")
# Errors after which a command may or may not have reached Redis.
_CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


class RedisBroker:
    def __init__(self, url: str, history_size: int, max_event_bytes: int, health_seconds: float = 5.0):
        parts = urlsplit(url)
        self.description = f"Redis at {parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path or ''}"
        timeouts = {"socket_timeout": COMMAND_TIMEOUT_SECONDS, "socket_connect_timeout": COMMAND_TIMEOUT_SECONDS}
        # No retries anywhere: a write whose reply was lost may have run
        # (issue 8, item 3), and the pool already replaces connections that
        # died while idle (a Redis restart) before handing them out.
        no_retry = Retry(NoBackoff(), 0)
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=COMMAND_POOL_SIZE, timeout=COMMAND_TIMEOUT_SECONDS, retry=no_retry, **timeouts
        )
        # Sent with every publish, so hubs with other settings on this Redis do not change this hub's.
        self._settings = (history_size, max_event_bytes)
        library = Library(library_source())
        self._functions = Functions(redis.Redis(connection_pool=pool), library)
        own = Functions(redis.Redis.from_url(url, retry=no_retry, **timeouts), library)
        self._reads = gevent.lock.BoundedSemaphore(CONCURRENT_READS)
        self._warned_about_eviction = False
        self._listener = Listener(
            own.client,
            on_connect=lambda: self._on_connect(own),
            replay=own.replay,
            health_seconds=health_seconds,
            confirm_seconds=CONFIRM_SECONDS,
            connected_seconds=COMMAND_TIMEOUT_SECONDS,
        )

    def start(self, deliver: Callable[[Event], None], history_lost: Callable[[str], None]) -> None:
        """Raises ConfigError when Redis answers and is older than 7; when it
        does not answer yet, the listener keeps trying."""
        try:
            self._functions.prepare()
        except RedisTooOld as error:
            self.close()
            raise ConfigError(str(error)) from None
        except BrokerUnavailable as error:
            logger.warning("Redis is not reachable yet (%s); streams wait for it", error)
        self._listener.start(deliver, history_lost)

    def publish(self, channel: str, data: str, event: str | None = None) -> EventId:
        arguments = (stream_key(channel), data, event or "", *self._settings)
        with unavailable_on_redis_errors():
            return parse_stream_id(self._functions.run(self._send_once, "ssehub_publish", *arguments))

    def listen(self, channel: str) -> EventId:
        # The head is read before subscribing; the listener fills in anything
        # published between the two once the subscription is confirmed.
        head = self.head(channel)
        self._listener.subscribe(channel, head)
        return head

    def unlisten(self, channel: str) -> None:
        self._listener.unsubscribe(channel)

    def head(self, channel: str) -> EventId:
        with self._reads:
            return self._functions.head(channel)

    def replay(self, channel: str, after: EventId | None, limit: int) -> Replay:
        with self._reads:
            return self._functions.replay(channel, after, limit)

    def recent(self, channel: str, count: int) -> list[Event]:
        with self._reads, unavailable_on_redis_errors():
            entries: list[tuple[bytes, dict[bytes, bytes]]] = self._functions.client.xrevrange(  # type: ignore[assignment]
                stream_key(channel), count=count
            )
        return [event_from_entry(channel, entry_id, _flat(fields)) for entry_id, fields in reversed(entries)]

    def check(self) -> None:
        self._functions.check_writable()
        if not self._listener.connected:
            raise BrokerUnavailable(f"pub/sub reconnecting: {self._listener.last_error}")

    def close(self) -> None:
        self._listener.stop()
        self._functions.client.connection_pool.disconnect()

    def _send_once(self, *command):
        """Run a write once; never resend it, because its reply, not the write, may be what was lost."""
        pool = self._functions.client.connection_pool
        connection = pool.get_connection()
        try:
            try:
                connection.send_command(*command)
            except _CONNECTION_ERRORS:
                # Not sent whole, so not run.
                connection.disconnect()
                raise
            try:
                return connection.read_response()
            except _CONNECTION_ERRORS as error:
                connection.disconnect()
                raise PublishOutcomeUnknown(
                    f"the connection to Redis was lost after the publish was sent ({type(error).__name__}), "
                    "so it may or may not have been stored; it was not resent"
                ) from None
        finally:
            pool.release(connection)

    def _on_connect(self, functions: Functions) -> None:
        """Each (re)connection of the listener: prepare the library, and say once if Redis may evict history."""
        functions.prepare()
        if self._warned_about_eviction:
            return
        self._warned_about_eviction = True
        try:
            policy = functions.client.config_get("maxmemory-policy").get("maxmemory-policy")
        except redis.RedisError:
            return  # managed Redis often forbids CONFIG; nothing to tell
        if policy in EVICTING_POLICIES:
            logger.warning(
                "Redis maxmemory-policy is %s: under memory pressure it evicts channel history "
                "(streams resume with ssehub.reset); use noeviction or a volatile-* policy",
                policy,
            )


def _flat(fields: dict[bytes, bytes]) -> list[bytes]:
    return [item for pair in fields.items() for item in pair]
