"""ssehub.lua's Redis Functions, called over one Redis client.

The broker calls them over its shared command pool, the pub/sub listener over
a connection of its own, so the listener never waits on a pool that a herd
of resuming subscribers has drained (issue 8, item 2).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import redis

from ..cursor import EventId, format_id
from . import REPLAY_PAGE_BYTES, BrokerUnavailable, Replay
from .redis_format import event_from_entry, parse_stream_id, stream_key

_LUA_PATH = os.path.join(os.path.dirname(__file__), "ssehub.lua")
# A key the readiness probe names, never written: Redis checks the user's ACL
# key permissions on it as on any channel's (ssehub:*).
_PROBE_KEY = stream_key("ssehub.ready")


def library_source() -> str:
    """ssehub.lua as shipped: every hub loads the same text (its settings go with each publish)."""
    with open(_LUA_PATH) as source:
        return source.read()


class Functions:
    def __init__(self, client: redis.Redis, library: str):
        self.client = client
        self._library = library

    def load(self) -> None:
        """(Re)load ssehub.lua; Redis loses it on a restart without persistence."""
        with unavailable_on_redis_errors():
            self.client.function_load(self._library, replace=True)

    def head(self, channel: str) -> EventId:
        return parse_stream_id(self._call_read_only("ssehub_head", channel))

    def replay(self, channel: str, after: EventId | None, limit: int) -> Replay:
        exact, start, entries, more = self._call_read_only(
            "ssehub_replay", channel, format_id(after) if after else "", limit, REPLAY_PAGE_BYTES
        )
        events = [event_from_entry(channel, entry_id, fields) for entry_id, fields in entries]
        return Replay(events, bool(exact), parse_stream_id(start), bool(more))

    def check_writable(self) -> None:
        """Raise BrokerUnavailable when Redis would refuse a publish (OOM, READONLY, NOPERM)."""
        with unavailable_on_redis_errors():
            self.loaded(lambda: self.client.fcall("ssehub_ready", 1, _PROBE_KEY))

    def loaded(self, call):
        """`call()`, loading the library first if Redis lost it; safe to repeat,
        because a function that does not exist did not run."""
        try:
            return call()
        except redis.ResponseError as error:
            if "Function not found" not in str(error):
                raise
        self.load()
        return call()

    def _call_read_only(self, function: str, channel: str, *args):
        with unavailable_on_redis_errors():
            return self.loaded(lambda: self.client.fcall_ro(function, 1, stream_key(channel), *args))


@contextlib.contextmanager
def unavailable_on_redis_errors() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as error:
        raise BrokerUnavailable.because(error) from None
