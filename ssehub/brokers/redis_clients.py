"""The Redis clients a hub process holds, for one Redis or a Sentinel service.

Commands share one bounded pool; the pub/sub listener has a client of its
own. Through Sentinel, both find the primary anew on every connection, so a
failover is a reconnection like any other (issue 13, item 2). The listener's
routes are trivial here: one primary owns every channel (redis_cluster.py
has the other kind).
"""

from __future__ import annotations

import redis
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..redis_url import RedisAddress
from . import BrokerUnavailable
from .redis_replicas import Counted, PlainReplicas, promotable

# What commands are sent over: one Redis's client or a cluster's.
Client = redis.Redis | redis.RedisCluster
# Connections for commands, shared by every request of this process.
COMMAND_POOL_SIZE = 16
# A publish or replay that takes longer than this fails with 503 instead of hanging.
COMMAND_TIMEOUT_SECONDS = 2.0
_TIMEOUTS = {"socket_timeout": COMMAND_TIMEOUT_SECONDS, "socket_connect_timeout": COMMAND_TIMEOUT_SECONDS}
# No retries anywhere: a write whose reply was lost may have run (issue 8,
# item 3), and the pool already replaces connections that died while idle
# (a Redis restart) before handing them out.
_NO_RETRY = Retry(NoBackoff(), 0)


class _BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's discovery of the primary, with the bound and wait of a blocking pool."""


# The listener's keep-alive subscription: no channel's key has this form.
KEEPALIVE_KEY = "ssehub:listener"
PRIMARY = "primary"


# A hub that started while its one cluster node did not answer took it for one Redis.
NOT_ONE_REDIS = (
    "REDIS_URL names a node of a Redis Cluster that did not answer when the hub started, so the hub took it "
    "for a single Redis: restart the hub (or name several nodes)"
)


class RedisClients:
    cluster = False

    def __init__(self, address: RedisAddress):
        self.address = address
        self._replicas = Counted(self._count_replicas)
        self._plain = PlainReplicas()
        bounded = {"max_connections": COMMAND_POOL_SIZE, "timeout": COMMAND_TIMEOUT_SECONDS}
        if address.sentinel:
            self._sentinel = _sentinel(address)
            self.commands = self._primary(_BlockingSentinelPool, **bounded)
            self.listener = self._primary(redis.sentinel.SentinelConnectionPool)
        else:
            url = address.urls[0]
            pool = redis.BlockingConnectionPool.from_url(url, retry=_NO_RETRY, **bounded, **_TIMEOUTS)
            self.commands = redis.Redis(connection_pool=pool)
            self.listener = redis.Redis.from_url(url, retry=_NO_RETRY, **_TIMEOUTS)

    def replicas_needed(self, key: str) -> int:
        """Replicas that must hold a publish: every one Sentinel may promote, up
        or down; with a plain URL, the real replicas the primary has had recently
        (redis_replicas.PlainReplicas)."""
        return int(self._replicas.get())  # type: ignore[call-overload]

    def _count_replicas(self) -> int:
        if self.address.sentinel:
            return promotable(_known_replicas(self._sentinel, self.address.service))
        return self._plain.update(self.commands.info("replication"))

    def pool_for(self, key: str) -> redis.ConnectionPool:
        return self.commands.connection_pool

    def stale(self) -> None:
        """Nothing to read again: the pool reconnects (through Sentinel, to the primary now)."""

    def moved(self) -> None:
        raise BrokerUnavailable(NOT_ONE_REDIS)

    def pool_at(self, host: str, port: int) -> redis.ConnectionPool:
        raise BrokerUnavailable(NOT_ONE_REDIS)

    def primaries(self) -> list[tuple[redis.Redis, str]]:
        """Each primary, with a key its slots hold, for the readiness probe."""
        return [(self.commands, "ssehub:ready")]

    # The listener's routes.

    def owner(self, channel: str) -> str:
        return PRIMARY

    def pubsub_client(self, owner: str) -> redis.Redis:
        return self.listener

    def keepalive_key(self, owner: str) -> str:
        return KEEPALIVE_KEY

    def refresh(self) -> None:
        """Nothing to look up: Sentinel is asked on every connection."""

    def close(self) -> None:
        self.listener.close()
        self.commands.connection_pool.disconnect()
        if self.address.sentinel:
            self._sentinel.close()

    def _primary(self, pool_class, **pool_settings) -> redis.Redis:
        return self._sentinel.master_for(
            self.address.service, connection_pool_class=pool_class, retry=_NO_RETRY, **pool_settings
        )


def _sentinel(address: RedisAddress) -> redis.sentinel.Sentinel:
    """Sentinels reached with the URL's TLS settings; the primary and replicas
    with its credentials, database and TLS settings as well."""
    settings = redis.connection.parse_url(address.urls[0])
    settings.pop("host"), settings.pop("port")
    tls = settings.pop("connection_class", None) is not None
    tls_settings = {key: value for key, value in settings.items() if key.startswith("ssl")}
    return redis.sentinel.Sentinel(
        [(unbracketed(host), port) for host, port in address.hosts],
        sentinel_kwargs={**_TIMEOUTS, **tls_settings, **({"ssl": True} if tls else {})},
        **{**settings, **_TIMEOUTS, **({"ssl": True} if tls else {})},
    )


def _known_replicas(sentinel: redis.sentinel.Sentinel, service: str | None) -> list[dict]:
    """The replicas the first Sentinel that answers knows of."""
    for node in sentinel.sentinels:
        try:
            return node.sentinel_slaves(service)
        except (redis.ConnectionError, redis.TimeoutError):
            continue
    raise redis.ConnectionError("no Sentinel answered")


def unbracketed(host: str) -> str:
    """An IPv6 literal as sockets take it: [::1] → ::1."""
    return host[1:-1] if host.startswith("[") else host
