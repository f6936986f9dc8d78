"""The broker contract: where events are stored, numbered and announced.

The hub and the HTTP layer see only `Broker`; `memory` (embedded, the default)
and `redis` (production) implement it and pass one contract test suite.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

from ..config import Config
from ..cursor import EventId
from ..event import Event
from ..idempotency import Idempotency

# A replay page holds at most about this many bytes of event data, so a herd
# of resuming clients after a restart always makes progress and a client
# that reads slowly pins little memory (issue 8, item 6).
REPLAY_PAGE_BYTES = 1 << 20


class BrokerUnavailable(ConnectionError):
    """The broker cannot be reached now; the caller should answer 503 or retry later."""

    @classmethod
    def because(cls, error: BaseException) -> BrokerUnavailable:
        """Wrap a client library's error, naming its kind (its message alone may be empty)."""
        return cls(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)


class IdempotencyConflict(ValueError):
    """The idempotency key was used for another publish: answer 422, store nothing."""


CONFLICT = "this Idempotency-Key was used for another publish (another body) in the last 15 minutes; use a new key"


class PublishOutcomeUnknown(BrokerUnavailable):
    """The connection was lost after a publish was sent: it may or may not be stored.

    It is never resent (that could store it twice); the publisher decides.
    """


@dataclasses.dataclass(frozen=True)
class Replay:
    """Events after a position, and whether that position was resumable exactly."""

    events: list[Event]
    # False: the position was older than the retained history, malformed, or
    # from a history that no longer exists; `events` then start at `start`.
    exact: bool
    # The position the events follow: the one asked for, or the floor of history.
    start: EventId
    # True when the page stopped at a limit: more events may follow the last one.
    more: bool = False


class Broker(Protocol):
    description: str  # for the start-up log

    def start(self, deliver: Callable[[Event], None], history_lost: Callable[[str], None]) -> None:
        """Begin handing every new event on a listened channel to `deliver`, once, in order.

        `history_lost(channel)` says events on it could not all be handed over (history
        was trimmed during an outage, or lost): its streams must resume by id.
        """

    def publish(self, channel: str, data: str, event: str | None = None) -> EventId:
        """Store and announce one event once and return its id, or raise
        BrokerUnavailable (PublishOutcomeUnknown when it may have been stored)."""

    def publish_once(
        self, channel: str, data: str, event: str | None, idempotency: Idempotency
    ) -> tuple[EventId, bool]:
        """`publish`, once per idempotency key: the id and True when stored now;
        for a key already stored, its event's id and False (nothing stored);
        IdempotencyConflict when that key came with another fingerprint."""

    def conflicts(self, channel: str, idempotency: Idempotency) -> bool:
        """Whether `idempotency`'s key was used on `channel` with another fingerprint:
        a batch is checked whole before any of it is stored."""

    def listen(self, channel: str) -> EventId:
        """Announce events on `channel` to this process from now on: every
        event after the returned id (the channel's head) is handed to `deliver`."""

    def unlisten(self, channel: str) -> None:
        """Stop announcing `channel`; it has no subscriber in this process."""

    def head(self, channel: str) -> EventId:
        """Where a client that starts now stands on `channel`; writes nothing."""

    def replay(self, channel: str, after: EventId | None, limit: int) -> Replay:
        """Up to `limit` events (and about REPLAY_PAGE_BYTES) after `after`
        (None: from the floor), oldest first; writes nothing."""

    def recent(self, channel: str, count: int) -> list[Event]:
        """The newest `count` retained events, oldest first."""

    def check(self) -> None:
        """Raise BrokerUnavailable, saying why, unless the broker is reachable."""

    def close(self) -> None:
        """Release connections and background work."""


def create_broker(config: Config) -> Broker:
    """The Redis broker when REDIS_URL is set, else the embedded one."""
    if config.redis_url:
        from .redis import RedisBroker

        return RedisBroker(
            config.redis_url,
            history_size=config.history_size,
            max_event_bytes=config.max_event_bytes,
            health_seconds=min(5.0, max(0.5, config.heartbeat_seconds)),
            replica_ack=config.publish_ack == "replica",
        )
    from .memory import MemoryBroker

    return MemoryBroker(history_size=config.history_size)
