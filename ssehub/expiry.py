"""The end of a stream whose token ran out: the event that says so (issue 11, item 5).

EventSource gives up for good on any status but 200, so an expired token is
a 200 with `event: ssehub.token-expired`, a long `retry:` (a client that
ignores the event must not hammer the hub), and the end of the response. On
an open stream the event carries the stream's position as its id, so the
client reconnects with a fresh token from exactly where it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from . import wire
from .cursor import EventId, format_cursor

TOKEN_EXPIRED_EVENT = "ssehub.token-expired"
# Where a stream's request tells our server when its token runs out, so that
# no single write to a slow reader outlives it (server.TimedHandler).
ENVIRON_KEY = "ssehub.expires_at"
EXPIRED_RETRY_MS = 30_000
_DATA = json.dumps({"reason": "expired"})


def token_expired(positions: Mapping[str, EventId] | None = None, first: str = "") -> bytes:
    """The last words of a stream whose token expired; `positions` (where it
    stands, `first` the channel to name first) become the event's id."""
    cursor = format_cursor(positions, first) if positions else None
    return wire.retry(EXPIRED_RETRY_MS) + wire.encode_event(_DATA, TOKEN_EXPIRED_EVENT, cursor)


def has_passed(expires_at: float | None) -> bool:
    """Whether a token that runs out at `expires_at` (epoch seconds; None: never) has run out."""
    return expires_at is not None and time.time() >= expires_at


def write_wait(timeout: float, expires_at: float | None) -> float:
    """How long one write may wait: `timeout`, but never past the token's
    expiry (a reader that takes a trickle must not keep a stream beyond it).
    At least 1 ms: a socket timeout of 0 would make the socket non-blocking."""
    if expires_at is None:
        return timeout
    return max(0.001, min(timeout, expires_at - time.time()))
