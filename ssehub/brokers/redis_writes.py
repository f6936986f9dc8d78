"""A publish, sent once to its channel's primary, and acknowledged as configured.

Never resent by a client library: a write whose reply was lost may have run
(issue 8, item 3). MOVED and ASK answers mean it did not run, so it follows
them. Where the primary has replicas, it WAITs for one to hold the event and
only then announces it, so no subscriber sees an event a failover could lose
(issue 13, item 3).
"""

from __future__ import annotations

import logging
import time

import redis

from . import BrokerUnavailable, PublishOutcomeUnknown
from .redis_format import notification
from .redis_functions import Functions

logger = logging.getLogger(__name__)

# How long a publish waits for a replica to acknowledge it (Redis WAIT).
REPLICA_WAIT_MS = 1000
WAIT = ("WAIT", 1, REPLICA_WAIT_MS)
# How often the number of replicas is looked up again.
REPLICAS_CHECK_SECONDS = 5.0
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
        self._replicas = False
        self._replicas_checked = -REPLICAS_CHECK_SECONDS

    def publish(self, key: str, data: str, event: str | None, settings: tuple[int, int]) -> bytes:
        """The new entry's raw id; raises redis errors, or PublishOutcomeUnknown."""
        wait = self.replicas_to_wait_for()
        arguments = (key, data, event or "", *settings, *(("0",) if wait else ()))
        reply = self._functions.run(lambda *command: self._send(key, command, wait), "ssehub_publish", *arguments)
        if not wait:
            return reply
        raw_id, raw_previous = reply
        try:
            self._functions.client.execute_command("SPUBLISH", key, notification(raw_id, raw_previous, event, data))
        except redis.RedisError as error:
            # Stored and replicated: listeners get it with the next event or reconnection.
            logger.warning("event %s on %s is stored but its announcement failed: %s", raw_id, key, error)
        return raw_id

    def replicas_to_wait_for(self) -> bool:
        """Whether the primary has replicas (looked up every few seconds) that a publish must wait for."""
        now = time.monotonic()
        if self._replica_ack and now - self._replicas_checked > REPLICAS_CHECK_SECONDS:
            self._replicas_checked = now
            try:
                self._replicas = self._clients.replicas() > 0
            except redis.RedisError as error:
                logger.debug("could not count the replicas (%s); still %s", error, self._replicas)
        return self._replica_ack and self._replicas

    def _send(self, key: str, command: tuple, wait: bool):
        pool, asking = self._clients.pool_for(key), False
        for _ in range(MAX_REDIRECTIONS):
            try:
                return _send_once(pool, command, wait, asking)
            except redis.exceptions.MovedError:
                self._clients.moved()
                pool, asking = self._clients.pool_for(key), False
            except redis.exceptions.AskError as error:
                pool, asking = self._clients.pool_at(error.host, error.port), True
            except (*_CONNECTION_ERRORS, redis.exceptions.ClusterDownError):
                self._clients.stale()  # a failover: the next publish finds the new primary
                raise
        raise BrokerUnavailable(f"the cluster redirected a publish to {key} {MAX_REDIRECTIONS} times; try again")


def _send_once(pool: redis.ConnectionPool, command: tuple, wait: bool, asking: bool):
    connection = pool.get_connection()
    try:
        commands = [*([("ASKING",)] if asking else []), command, *([WAIT] if wait else [])]
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
    finally:
        pool.release(connection)
    reply = replies[1 if asking else 0]
    if isinstance(reply, redis.ResponseError):
        raise reply
    if wait and isinstance(replies[-1], redis.ResponseError):
        raise PublishOutcomeUnknown(f"the publish was stored, but WAIT was refused ({replies[-1]}); it was not resent")
    if wait and not replies[-1]:
        raise PublishOutcomeUnknown(
            f"no replica acknowledged the publish within {REPLICA_WAIT_MS} ms, so a failover could lose it: "
            "it may or may not be kept; it was not resent (PUBLISH_ACK=primary accepts the primary alone)"
        )
    return reply


def _reply(connection):
    """A reply, or the error it is, so every reply of a pipeline is read before any is raised."""
    try:
        return connection.read_response()
    except redis.ResponseError as error:
        return error
