"""A publish, sent once to its channel's primary, and acknowledged as configured.

Never resent by a client library: a write whose reply was lost may have run
(issue 8, item 3). MOVED and ASK answers mean it did not run, so it follows
them. Where the primary has replicas, it WAITs for every one (any of them may
be promoted) and only then announces the event, so a publish answered 201
survives a failover, and announcements carry only such events (issue 13, item 3).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

import redis
from redis.exceptions import RedisClusterException

from ..idempotency import Idempotency
from . import CONFLICT, BrokerUnavailable, IdempotencyConflict, PublishOutcomeUnknown
from .redis_format import notification
from .redis_functions import Functions

logger = logging.getLogger(__name__)

# How long a publish waits for the replicas to acknowledge it (Redis WAIT).
REPLICA_WAIT_MS = 1000
# After a publish found too few replicas, publishes to that primary are refused
# for this long without being sent (they would hold a pooled connection for the WAIT).
SHORT_SECONDS = 1.0
# Redirections followed before a publish gives up with 503 (a cluster resharding).
MAX_REDIRECTIONS = 3
# Errors after which a command may or may not have reached Redis.
_CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


class Writes:
    def __init__(self, clients, functions: Functions, replica_ack: bool):
        """`clients`: redis_clients.RedisClients or redis_cluster.ClusterClients."""
        self._clients = clients
        self._functions = functions
        self._replica_ack = replica_ack
        # Per primary's pool: until when it is known to lack replicas in sync.
        self._short: dict[int, float] = {}

    def publish(
        self, key: str, data: str, event: str | None, settings: tuple[int, int], idempotency: Idempotency | None
    ) -> tuple[bytes, bool]:
        """The new entry's raw id and True, or for a repeated idempotency key an
        earlier one's and False; raises redis errors, BrokerUnavailable,
        PublishOutcomeUnknown or IdempotencyConflict."""
        replicas = self.replicas_to_wait_for(key)
        # 0: the hub announces, after WAIT; 2: Redis does, and tells a repeat; 1: Redis does.
        notify = "0" if replicas else "2" if idempotency else "1"
        once = (idempotency.key, idempotency.fingerprint) if idempotency else ()
        # The key's record is declared too: while a cluster migrates the slot, Redis answers
        # TRYAGAIN (a 503, nothing run) rather than check one node and append on another.
        keys = (key, idempotency_record(key, idempotency.key)) if idempotency else key
        arguments = (keys, data, event or "", *settings, *((notify, *once) if replicas or once else ()))

        def send(*command):
            return self._send(key, command, replicas, lambda reply: notification(reply[0], reply[1], event, data))

        try:
            reply = self._functions.run(send, "ssehub_publish", *arguments)
        except redis.ResponseError as error:
            if str(error).startswith("IDEMPOTENCY"):
                raise IdempotencyConflict(CONFLICT) from None
            raise
        if not isinstance(reply, list):
            return reply, True  # announced by Redis (or by a library of an older hub, which ignores notify)
        raw_id, raw_previous = reply
        return raw_id, raw_previous != b""

    def replicas_to_wait_for(self, key: str) -> int:
        return self._clients.replicas_needed(key) if self._replica_ack else 0

    def _send(self, key: str, command: tuple, replicas: int, payload: Callable[[list], bytes]):
        """`payload(reply)`: the notification of an event stored with notify 0."""
        pool, asking = self._clients.pool_for(key), False
        for _ in range(MAX_REDIRECTIONS):
            if replicas and self._short.get(id(pool), 0.0) > time.monotonic():
                # It just failed to replicate: refuse at once, storing nothing, rather
                # than hold a pooled connection for a WAIT that reads are queued behind.
                raise BrokerUnavailable(
                    f"fewer than {replicas} replicas are in sync with this channel's primary; nothing was stored, "
                    "try again shortly (PUBLISH_ACK=primary accepts the primary alone)"
                )
            try:
                connection = pool.get_connection()
                try:
                    reply = _run_once(connection, command, replicas, asking)
                    if isinstance(reply, list) and (replicas or not reply[1]):
                        # Stored with notify 0, or a repeat: its first publish may have been
                        # answered 503 before it was announced, and the repeat's empty previous
                        # id makes every listener read the channel's history, which brings it.
                        self._announce(connection, key, payload(reply))
                    return reply
                finally:
                    pool.release(connection)
            except redis.exceptions.MovedError:
                self._clients.moved()
                pool, asking = self._clients.pool_for(key), False
            except redis.exceptions.AskError as error:
                pool, asking = self._clients.pool_at(error.host, error.port), True
            except ReplicasShort:
                self._short[id(pool)] = time.monotonic() + SHORT_SECONDS
                raise
            except (*_CONNECTION_ERRORS, redis.exceptions.ClusterDownError):
                self._clients.stale()  # a failover: the next publish finds the new primary
                raise
        raise BrokerUnavailable(f"the cluster redirected a publish to {key} {MAX_REDIRECTIONS} times; try again")

    def _announce(self, connection, key: str, payload: bytes) -> None:
        """SPUBLISH an event stored with notify 0, on the same connection, else
        through the client (which follows a slot being migrated). It never
        raises: the event is stored and replicated, its publish must not be
        resent, and without an announcement subscribers get it with the
        channel's next event. A listener ignores an event it has handed over;
        a repeat's empty previous id makes it read the channel's history."""
        try:
            connection.send_command("SPUBLISH", key, payload)
            connection.read_response()
            return
        except (*_CONNECTION_ERRORS, redis.ResponseError):
            connection.disconnect()
        try:
            self._functions.client.execute_command("SPUBLISH", key, payload)
        except (*_CONNECTION_ERRORS, redis.RedisError, RedisClusterException) as error:
            logger.warning("an acknowledged event on %s could not be announced: %s", key, error)


def idempotency_record(key: str, idempotency_key: str) -> str:
    """Where ssehub.lua keeps an idempotency key: in the stream's slot, by its SHA-1."""
    return f"{key}:idempotency:{hashlib.sha1(idempotency_key.encode()).hexdigest()}"


class ReplicasShort(PublishOutcomeUnknown):
    """Stored on the primary, but fewer replicas than needed acknowledged it."""


def _run_once(connection, command: tuple, replicas: int, asking: bool):
    """Send `command` (after ASKING) and WAIT for `replicas`, in one write; its reply."""
    commands = [
        *([("ASKING",)] if asking else []),
        command,
        *([("WAIT", replicas, REPLICA_WAIT_MS)] if replicas else []),
    ]
    try:
        connection.send_packed_command(connection.pack_commands(commands))
    except _CONNECTION_ERRORS:
        # Not sent whole, so not run.
        connection.disconnect()
        raise
    try:
        replies = [_reply(connection) for _ in commands]
    except _CONNECTION_ERRORS as error:
        connection.disconnect()
        raise PublishOutcomeUnknown(
            f"the connection to Redis was lost after the publish was sent ({type(error).__name__}), "
            "so it may or may not have been stored; it was not resent"
        ) from None
    reply = replies[1 if asking else 0]
    if isinstance(reply, redis.ResponseError):
        raise reply
    if replicas:
        _check_acknowledged(replicas, replies[-1])
    return reply


def _check_acknowledged(replicas: int, acknowledged) -> None:
    if isinstance(acknowledged, redis.ResponseError):
        raise PublishOutcomeUnknown(f"the publish was stored, but WAIT was refused ({acknowledged}); it was not resent")
    if acknowledged < replicas:
        raise ReplicasShort(
            f"{acknowledged} of {replicas} replicas acknowledged the publish within {REPLICA_WAIT_MS} ms, so a "
            "failover could lose it: it may or may not be kept; it was not resent "
            "(PUBLISH_ACK=primary accepts the primary alone)"
        )


def _reply(connection):
    """A reply, or the error it is, so every reply of a pipeline is read before any is raised."""
    try:
        return connection.read_response()
    except redis.ResponseError as error:
        return error
