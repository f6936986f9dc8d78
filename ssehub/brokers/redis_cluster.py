"""The Redis clients of a hub on a Redis Cluster (issue 13, item 1).

redis-py's RedisCluster keeps the map of slots and a bounded pool per
primary. Publishes are sent on the key's owner's pool directly (never resent
by a client library), and the listener's routes send each channel to the
primary that owns its slot now. The clients are made on first use, so a hub
started while no node answers serves, not ready, until one does.
"""

from __future__ import annotations

import itertools
import time

import gevent.lock
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from ..redis_url import RedisAddress
from . import BrokerUnavailable
from .redis_clients import _TIMEOUTS, COMMAND_POOL_SIZE, COMMAND_TIMEOUT_SECONDS, RedisClients, unbracketed
from .redis_format import stream_key
from .redis_functions import unavailable_on_redis_errors
from .redis_library import reply_field
from .redis_replicas import Counted, by_primary

# A stale map of slots is read again at most this often (each failing publish asks).
REFRESH_SECONDS = 0.5
# The listener reads history one channel at a time per primary.
LISTENER_POOL_SIZE = 4


class ClusterClients:
    cluster = True

    def __init__(self, address: RedisAddress):
        self.address = address
        self._commands: RedisCluster | None = None
        # The listener's own, so it never waits on a pool that resuming streams drained.
        self._listener: RedisCluster | None = None
        self._keys: dict[tuple[str, int], str] = {}
        self._refreshed = time.monotonic()
        self._replicas = Counted(lambda: by_primary(self.commands.cluster_nodes()))
        self._making = gevent.lock.Semaphore()

    @property
    def commands(self) -> RedisCluster:
        if self._commands is None:
            with self._making:  # one client, however many greenlets ask while it connects
                if self._commands is None:
                    self._commands = _cluster(self.address, COMMAND_POOL_SIZE)
        return self._commands

    @property
    def listener(self) -> RedisCluster:
        if self._listener is None:
            with self._making:
                if self._listener is None:
                    self._listener = _cluster(self.address, LISTENER_POOL_SIZE)
        return self._listener

    def replicas_needed(self, key: str) -> int:
        """Replicas that must hold a publish to `key`: every replica of its
        primary that CLUSTER NODES lists, failed ones included, and at least
        one where any primary has replicas (a shard whose replica was just
        promoted has none left, and must not take writes alone)."""
        with unavailable_on_redis_errors():
            owner = self.commands.get_node_from_key(key).name
        counts: dict[str, int] = self._replicas.get()  # type: ignore[assignment]
        if owner not in counts:  # a primary new since the last count (a failover)
            counts = self._replicas.get(force=True)  # type: ignore[assignment]
        return max(counts.get(owner, 0), 1 if any(counts.values()) else 0)

    def pool_for(self, key: str) -> redis.ConnectionPool:
        with unavailable_on_redis_errors():
            node = self.commands.get_node_from_key(key)
            return self.commands.get_redis_connection(node).connection_pool

    def pool_at(self, host: str, port: int) -> redis.ConnectionPool:
        """The pool of the node an ASK redirection names."""
        node = self.commands.get_node(host, port)
        if node is None:
            self.moved()
            node = self.commands.get_node(host, port)
        if node is None:
            raise BrokerUnavailable(f"ASK named {host}:{port}, which is not a node of the cluster")
        return self.commands.get_redis_connection(node).connection_pool

    def moved(self) -> None:
        """A publish was answered MOVED: read the slots again before the next try."""
        self._refreshed = time.monotonic()
        with unavailable_on_redis_errors():
            self.commands.nodes_manager.initialize(disconnect_startup_nodes_pools=False)

    def stale(self) -> None:
        """A primary did not answer: it may have been replaced, so read the slots
        again (at most every REFRESH_SECONDS), for the next publish to find its successor."""
        if time.monotonic() - self._refreshed > REFRESH_SECONDS:
            try:
                self.moved()
            except BrokerUnavailable:
                pass  # no node answered: the next failure tries again

    def primaries(self) -> list[tuple[redis.Redis, str]]:
        """Each primary, with a key of one of its slots, for the readiness probe."""
        with unavailable_on_redis_errors():
            return [
                (self.commands.get_redis_connection(node), self._key_of(self.commands, node.name, "ssehub:ready"))
                for node in self.commands.get_primaries()
            ]

    def close(self) -> None:
        for client in (self._commands, self._listener):
            if client is not None:
                client.close()

    # The listener's routes.

    def owner(self, channel: str) -> str:
        with unavailable_on_redis_errors():
            return self.listener.nodes_manager.get_node_from_slot(key_slot(stream_key(channel).encode())).name

    def pubsub_client(self, owner: str) -> redis.Redis:
        with unavailable_on_redis_errors():
            node = self.listener.get_node(node_name=owner)
            if node is None:
                raise BrokerUnavailable(f"{owner} is no longer a node of the cluster")
            return self.listener.get_redis_connection(node)

    def keepalive_key(self, owner: str) -> str:
        return self._key_of(self.listener, owner, "ssehub:listener")

    def refresh(self) -> None:
        with unavailable_on_redis_errors():
            self.listener.nodes_manager.initialize(disconnect_startup_nodes_pools=False)

    def _key_of(self, client: RedisCluster, owner: str, prefix: str) -> str:
        """A key `prefix`:N in the first slot `owner` holds; no channel's key has that form."""
        slots = client.nodes_manager.slots_cache
        slot = next((slot for slot, nodes in sorted(slots.items()) if nodes and nodes[0].name == owner), None)
        if slot is None:
            raise BrokerUnavailable(f"{owner} holds no slot now")
        if (prefix, slot) not in self._keys:
            self._keys[prefix, slot] = next(
                key for n in itertools.count() if key_slot((key := f"{prefix}:{n}").encode()) == slot
            )
        return self._keys[prefix, slot]


def _cluster(address: RedisAddress, pool_size: int) -> RedisCluster:
    """A cluster client from every node the URL names (any one answering will do)."""
    with unavailable_on_redis_errors():
        return RedisCluster(
            url=address.urls[0],
            startup_nodes=[ClusterNode(unbracketed(host), port) for host, port in address.hosts[1:]],
            connection_pool_class=redis.BlockingConnectionPool,
            max_connections=pool_size,
            timeout=COMMAND_TIMEOUT_SECONDS,
            socket_timeout=COMMAND_TIMEOUT_SECONDS,
            socket_connect_timeout=COMMAND_TIMEOUT_SECONDS,
        )


def clients_for(address: RedisAddress) -> RedisClients | ClusterClients:
    """Sentinel's, a cluster's, or one Redis's: the hub tells a cluster by itself."""
    if not address.sentinel and is_cluster(address):
        return ClusterClients(address)
    return RedisClients(address)


def is_cluster(address: RedisAddress) -> bool:
    """Whether the first node that answers says it is in cluster mode; with
    none answering, whether the URL names several nodes (a single node of a
    cluster is found out when it answers: see redis_library.check_mode)."""
    for url in address.urls:
        try:
            with redis.Redis.from_url(url, **_TIMEOUTS) as client:
                return reply_field(client.execute_command("HELLO"), "mode") == "cluster"
        except (redis.RedisError, OSError):
            continue
    return len(address.hosts) > 1
