"""The Redis clients of a hub on a Redis Cluster (issue 13, item 1).

redis-py's RedisCluster routes commands by key and follows MOVED and ASK;
each primary gets a bounded pool. Publishes are sent on the key's owner's
pool directly (never resent by a client library), and the listener's routes
send each channel to the primary that owns its slot now.
"""

from __future__ import annotations

import itertools
import time

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from ..redis_url import RedisAddress
from .redis_clients import _TIMEOUTS, COMMAND_POOL_SIZE, COMMAND_TIMEOUT_SECONDS, RedisClients
from .redis_format import stream_key
from .redis_library import reply_field

# A stale map of slots is read again at most this often (each failing publish asks).
REFRESH_SECONDS = 0.5
# How long the replicas of each primary are remembered before CLUSTER NODES is asked again.
REPLICAS_CACHE_SECONDS = 5.0


class ClusterClients:
    cluster = True

    def __init__(self, address: RedisAddress):
        self.address = address
        self.commands = _cluster(address)
        # The listener's own, so it never waits on a pool that resuming streams drained.
        self.listener = _cluster(address)
        self._keys: dict[tuple[str, int], str] = {}
        self._refreshed = time.monotonic()

    def replicas(self) -> int:
        """Replicas that any primary has, failed ones included (CLUSTER NODES
        lists them): the cluster was built with replicas, so each shard must
        have one in sync to acknowledge a publish."""
        nodes = self.commands.cluster_nodes()
        return sum(
            1
            for node in nodes.values()
            if str(node["flags"]).split(",")[0] in ("slave", "replica") or ",slave" in str(node["flags"])
        )

    def pool_for(self, key: str) -> redis.ConnectionPool:
        node = self.commands.get_node_from_key(key)
        return self.commands.get_redis_connection(node).connection_pool

    def moved(self) -> None:
        """A publish was answered MOVED: read the slots again before the next try."""
        self.commands.nodes_manager.initialize()
        self._refreshed = time.monotonic()

    def stale(self) -> None:
        """A primary did not answer: it may have been replaced, so read the slots
        again (at most every REFRESH_SECONDS), for the next publish to find its successor."""
        if time.monotonic() - self._refreshed > REFRESH_SECONDS:
            try:
                self.moved()
            except (redis.RedisError, OSError):
                self._refreshed = time.monotonic()  # no node answered: try again later

    def pool_at(self, host: str, port: int) -> redis.ConnectionPool:
        """The pool of the node an ASK redirection names."""
        node = self.commands.get_node(host, port)
        if node is None:
            self.moved()
            node = self.commands.get_node(host, port)
        if node is None:
            raise redis.ConnectionError(f"ASK named {host}:{port}, which is not a node of the cluster")
        return self.commands.get_redis_connection(node).connection_pool

    def primaries(self) -> list[tuple[redis.Redis, str]]:
        """Each primary, with a key of one of its slots, for the readiness probe."""
        return [
            (self.commands.get_redis_connection(node), self._key_of(node.name, "ssehub:ready"))
            for node in self.commands.get_primaries()
        ]

    def close(self) -> None:
        self.commands.close()
        self.listener.close()

    # The listener's routes.

    def owner(self, channel: str) -> str:
        manager = self.listener.nodes_manager
        return manager.get_node_from_slot(key_slot(stream_key(channel).encode())).name

    def pubsub_client(self, owner: str) -> redis.Redis:
        node = self.listener.get_node(node_name=owner)
        if node is None:
            raise redis.ConnectionError(f"{owner} is no longer a node of the cluster")
        return self.listener.get_redis_connection(node)

    def keepalive_key(self, owner: str) -> str:
        return self._key_of(owner, "ssehub:listener")

    def refresh(self) -> None:
        self.listener.nodes_manager.initialize()

    def _key_of(self, owner: str, prefix: str) -> str:
        """A key `prefix`:N in the first slot `owner` holds; no channel's key has that form."""
        slots = self.listener.nodes_manager.slots_cache
        slot = next((slot for slot, nodes in sorted(slots.items()) if nodes and nodes[0].name == owner), None)
        if slot is None:
            raise redis.ConnectionError(f"{owner} holds no slot now")
        if (prefix, slot) not in self._keys:
            self._keys[prefix, slot] = next(
                key for n in itertools.count() if key_slot((key := f"{prefix}:{n}").encode()) == slot
            )
        return self._keys[prefix, slot]


def _cluster(address: RedisAddress) -> RedisCluster:
    """A cluster client from every node the URL names (any one answering will do)."""
    return RedisCluster(
        url=address.urls[0],
        startup_nodes=[ClusterNode(host, port) for host, port in address.hosts[1:]],
        connection_pool_class=redis.BlockingConnectionPool,
        max_connections=COMMAND_POOL_SIZE,
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
    none answering, whether the URL names several nodes."""
    for url in address.urls:
        try:
            with redis.Redis.from_url(url, **_TIMEOUTS) as client:
                return reply_field(client.execute_command("HELLO"), "mode") == "cluster"
        except (redis.RedisError, OSError):
            continue
    return len(address.hosts) > 1
