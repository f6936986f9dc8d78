"""The Redis broker: history in one Stream per channel, fan-out via sharded pub/sub.

Writes go through the Redis Functions in ssehub.lua (atomic append, trim,
floor and notify), each sent once (redis_writes); commands share a small
bounded pool per primary; one pub/sub connection per primary listens for
every channel it owns (redis_pubsub.Listener). One Redis, a Sentinel service
or a cluster (redis_clients, redis_cluster) serve the same contract.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import gevent.lock
import redis

from ..config import ConfigError
from ..cursor import EventId
from ..event import Event
from ..idempotency import Idempotency
from ..redis_url import parse_redis_url
from . import BrokerUnavailable, Replay
from .redis_clients import COMMAND_POOL_SIZE, COMMAND_TIMEOUT_SECONDS
from .redis_cluster import clients_for
from .redis_format import event_from_entry, parse_stream_id, stream_key
from .redis_functions import Functions, unavailable_on_redis_errors
from .redis_library import Library, RedisTooOld, library_source
from .redis_pubsub import Listener
from .redis_replicas import in_sync
from .redis_writes import Writes

logger = logging.getLogger(__name__)

# Reads (heads, replays) in flight at once; the rest of the pool stays free for
# publishes. A herd of resuming streams queues here, however long, instead of
# failing after the pool's 2 s wait and reconnecting into the same herd.
CONCURRENT_READS = COMMAND_POOL_SIZE // 2
# How long a new channel's first subscriber waits for Redis to confirm the
# subscription. Longer than a command: during a reconnect storm the process
# itself may take seconds to get to the confirmation, and failing then would
# send every waiting stream back into the storm (issue 12, item 4).
CONFIRM_SECONDS = 10.0
# Policies under which Redis may evict what ssehub keeps: streams (no TTL)
# under allkeys-*, idempotency keys (a TTL) under volatile-* too.
EVICTING_POLICIES = (
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
)


class RedisBroker:
    def __init__(
        self,
        url: str,
        history_size: int,
        max_event_bytes: int,
        health_seconds: float = 5.0,
        replica_ack: bool = True,
    ):
        """`replica_ack`: where the primary has replicas, a publish is
        acknowledged only once all of them have it (issue 13, item 3)."""
        self._clients = clients_for(parse_redis_url(url))
        kind = "Redis Cluster" if self._clients.cluster else "Redis"
        self.description = f"{kind} at {self._clients.address.describe()}"
        # Sent with every publish, so hubs with other settings on this Redis do not change this hub's.
        self._settings = (history_size, max_event_bytes)
        library = Library(library_source())
        self._functions = Functions(lambda: self._clients.commands, library)
        own = Functions(lambda: self._clients.listener, library)
        self._writes = Writes(self._clients, self._functions, replica_ack)
        self._reads = gevent.lock.BoundedSemaphore(CONCURRENT_READS)
        self._warned_about_eviction = False
        self._listener = Listener(
            self._clients,
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
        with unavailable_on_redis_errors():
            raw_id, _ = self._writes.publish(stream_key(channel), data, event, self._settings, None)
        return parse_stream_id(raw_id)

    def publish_once(
        self, channel: str, data: str, event: str | None, idempotency: Idempotency
    ) -> tuple[EventId, bool]:
        with unavailable_on_redis_errors():
            raw_id, stored = self._writes.publish(stream_key(channel), data, event, self._settings, idempotency)
        return parse_stream_id(raw_id), stored

    def conflicts(self, channel: str, idempotency: Idempotency) -> bool:
        with self._reads:
            return self._functions.conflicts(channel, idempotency.key, idempotency.fingerprint)

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
        """Ready when a publish to any channel would work: every primary takes
        writes and, where publishes wait for replicas, has them in sync."""
        try:
            with unavailable_on_redis_errors():
                for client, key in self._clients.primaries():
                    self._functions.run(client.execute_command, "ssehub_ready", key)
                    needed = self._writes.replicas_to_wait_for(key)
                    if needed and in_sync(client.info("replication")) < needed:
                        raise BrokerUnavailable(
                            f"fewer than {needed} replicas are in sync with a primary: its publishes get 503 "
                            "until they are (PUBLISH_ACK=primary accepts the primary alone)"
                        )
        except BrokerUnavailable:
            self._clients.stale()
            raise
        if not self._listener.connected:
            raise BrokerUnavailable(f"pub/sub reconnecting: {self._listener.last_error}")

    def close(self) -> None:
        self._listener.stop()
        self._clients.close()

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
                "Redis maxmemory-policy is %s: under memory pressure it evicts what ssehub keeps (channel "
                "history: streams resume with ssehub.reset; idempotency keys: retries publish twice); use noeviction",
                policy,
            )


def _flat(fields: dict[bytes, bytes]) -> list[bytes]:
    return [item for pair in fields.items() for item in pair]
