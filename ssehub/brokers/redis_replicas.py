"""How many replicas a publish waits for, and how many are in sync (issue 13, item 3).

A 201 must survive a failover, so a publish WAITs for every replica that
could be promoted. Where that set comes from depends on the topology: the
Sentinels' list, a cluster's CLUSTER NODES, or, for a plain URL, the real
replicas (not `redis-cli --rdb` backups) the primary has had recently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import gevent.lock
import redis
from redis.exceptions import RedisClusterException

from . import BrokerUnavailable

logger = logging.getLogger(__name__)

# How often the replicas are counted again.
CHECK_SECONDS = 5.0
# A plain URL's replica that stays away this long is no longer waited for (its
# primary then acknowledges alone, and the log says so).
FORGET_SECONDS = 300.0
# A replica that acknowledged the primary's stream this recently is in sync
# (replicas acknowledge every second).
IN_SYNC_LAG_SECONDS = 2


class Counted:
    """A count looked up at most every CHECK_SECONDS by one greenlet at a time;
    the last good one serves while a lookup fails, and without one the
    failure is BrokerUnavailable (better no publish than an unprotected one)."""

    def __init__(self, lookup: Callable[[], object]):
        self._lookup = lookup
        self._value: object = None
        self._checked = -CHECK_SECONDS
        self._lock = gevent.lock.Semaphore()

    def get(self, force: bool = False) -> object:
        """The count (`force`: looked up now, as when a new primary is not in it)."""
        if (force or time.monotonic() - self._checked > CHECK_SECONDS) and not self._lock.locked():
            with self._lock:
                self._checked = time.monotonic()
                try:
                    self._value = self._lookup()
                except (redis.RedisError, RedisClusterException, OSError) as error:
                    if self._value is None:
                        raise BrokerUnavailable(
                            f"could not count the replicas ({type(error).__name__}: {error}); "
                            "the user needs +info (or set PUBLISH_ACK=primary)"
                        ) from None
        if self._value is None:
            with self._lock:  # another greenlet's first lookup is under way
                pass
            if self._value is None:
                raise BrokerUnavailable("the replicas could not be counted yet")
        return self._value


class PlainReplicas:
    """A plain URL's primary: the most real replicas it had, until one has been
    missing for FORGET_SECONDS."""

    def __init__(self) -> None:
        self._most = 0
        self._short_since: float | None = None

    def update(self, replication: dict) -> int:
        now_connected = real_replicas(replication)
        now = time.monotonic()
        if now_connected >= self._most:
            self._most, self._short_since = now_connected, None
        elif self._short_since is None:
            self._short_since = now
        elif now - self._short_since > FORGET_SECONDS:
            logger.warning(
                "the primary has had %d replicas for %.0f s instead of %d: publishes now wait for %d",
                now_connected, FORGET_SECONDS, self._most, now_connected,
            )  # fmt: skip
            self._most, self._short_since = now_connected, None
        return self._most


def real_replicas(replication: dict) -> int:
    """From INFO replication: replicas, not SYNC clients such as `redis-cli --rdb` (port 0)."""
    return sum(1 for replica in _replicas(replication) if int(replica.get("port", 0)) > 0)


def in_sync(replication: dict) -> int:
    """From INFO replication: replicas online that acknowledged within IN_SYNC_LAG_SECONDS."""
    return sum(
        1
        for replica in _replicas(replication)
        if replica.get("state") == "online" and int(replica.get("lag", 99)) <= IN_SYNC_LAG_SECONDS
    )


def promotable(replicas: list[dict]) -> int:
    """From SENTINEL REPLICAS: those Sentinel may promote (priority 0 never is)."""
    return sum(1 for replica in replicas if int(replica.get("slave-priority", replica.get("replica-priority", 1))) != 0)


def by_primary(nodes: dict) -> dict[str, int]:
    """From CLUSTER NODES (by address): each primary's replicas, failed ones included,
    under its address and its announced hostname, whichever the slot map names."""
    counts_by_id: dict[str, int] = {}
    for node in nodes.values():
        if "slave" in str(node["flags"]).split(","):
            counts_by_id[node["master_id"]] = counts_by_id.get(node["master_id"], 0) + 1
    counts: dict[str, int] = {}
    for address, node in nodes.items():
        count = counts_by_id.get(node["node_id"], 0)
        counts[address] = count
        if node.get("hostname"):
            counts[f"{node['hostname']}:{address.rsplit(':', 1)[1]}"] = count
    return counts


def _replicas(replication: dict) -> list[dict]:
    return [value for name, value in replication.items() if name.startswith("slave") and isinstance(value, dict)]
