"""ssehub.lua's functions, called over one Redis client in the library's mode.

The broker calls them over its shared command pool, the pub/sub listener over
a connection of its own, so the listener never waits on a pool that a herd
of resuming subscribers has drained (issue 8, item 2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

import redis
from redis.exceptions import RedisClusterException

from ..cursor import EventId, format_id
from . import REPLAY_PAGE_BYTES, BrokerUnavailable, Replay
from .redis_clients import Client
from .redis_format import event_from_entry, parse_stream_id, stream_key
from .redis_library import Keys, Library

T = TypeVar("T")


class Functions:
    def __init__(self, client: Callable[[], Client], library: Library):
        """`client()`: the client to call over, made on first use (a cluster's is)."""
        self._client = client
        self.library = library

    @property
    def client(self) -> Client:
        with unavailable_on_redis_errors():
            return self._client()

    def prepare(self) -> None:
        """Load the library, or choose how to run it; Redis loses it on a restart without persistence."""
        with unavailable_on_redis_errors():
            self.library.prepare(self.client)

    def head(self, channel: str) -> EventId:
        return parse_stream_id(self._call("ssehub_head", stream_key(channel)))

    def replay(self, channel: str, after: EventId | None, limit: int) -> Replay:
        exact, start, entries, more = self._call(
            "ssehub_replay", stream_key(channel), format_id(after) if after else "", limit, REPLAY_PAGE_BYTES
        )
        events = [event_from_entry(channel, entry_id, fields) for entry_id, fields in entries]
        return Replay(events, bool(exact), parse_stream_id(start), bool(more))

    def conflicts(self, channel: str, key: str, fingerprint: str) -> bool:
        return bool(self._call("ssehub_conflicts", stream_key(channel), key, fingerprint))

    def run(self, send: Callable[..., T], name: str, key: Keys, *args) -> T:
        """`send(*command)` for function `name`; again another way if Redis
        answers that the function is missing, which means it did not run."""
        if self.library.mode is None:
            self.library.prepare(self.client)
        try:
            return send(*self.library.command(name, key, *args))
        except redis.ResponseError as error:
            instead = self.library.instead_of_missing(error, self.client, name, key, *args)
            if instead is None:
                raise
        return send(*instead)

    def _call(self, name: str, key: str, *args):
        with unavailable_on_redis_errors():
            return self.run(self.client.execute_command, name, key, *args)


@contextlib.contextmanager
def unavailable_on_redis_errors() -> Iterator[None]:
    """Redis's errors, and a cluster client's when no node answers, as BrokerUnavailable."""
    try:
        yield
    except (redis.RedisError, RedisClusterException) as error:
        raise BrokerUnavailable.because(error) from None
