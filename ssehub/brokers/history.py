"""Reading a channel's history after a position, page by page, merged by id.

One reader for the two places that catch up from history: a resuming stream
(stream.py) and the Redis listener filling a gap (redis_pubsub.py). Each asks
for the first page itself, because they react differently when the position
is no longer in the history (a reset for the client, the hub ending its streams).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator

from ..cursor import EventId
from ..event import Event
from . import BrokerUnavailable, Replay

# Events per page; each page is also bounded in bytes (REPLAY_PAGE_BYTES).
PAGE = 500

ReplayFn = Callable[[str, EventId | None, int], Replay]


class HistoryMoved(BrokerUnavailable):
    """History was trimmed past a reader between two of its pages; the reader
    resumes from its position and is then told what it missed."""


def pages_from(replay: ReplayFn, channel: str, first: Replay) -> Iterator[Event]:
    """The events of `first` and of every page after it, oldest first."""
    page = first
    while True:
        yield from page.events
        if not page.more:
            return
        page = replay(channel, page.events[-1].id, PAGE)
        if not page.exact:
            raise HistoryMoved(f"history of {channel} was trimmed during a replay")


def by_id(histories: Iterable[Iterable[Event]]) -> Iterator[Event]:
    """Several channels' histories as one, in id order (ids order events across channels)."""
    return heapq.merge(*histories, key=lambda event: event.id)
