"""The body of one /events response: resume from history, then follow live.

Gapless by construction (Mercure's liveQueue): the live subscription opens
before history is read, and live events at or below the position reached are
skipped, so nothing falls between replay and live and nothing comes twice.
In long-poll mode (for the EventSource polyfill) the response ends after the
first events it sends, or after a hold; the client's next id is the only state.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import logging
import time
from typing import Iterable, Iterator

from . import wire
from .brokers import REPLAY_PAGE_BYTES, Broker, BrokerUnavailable, Replay
from .cursor import EventId, format_cursor, parse_cursor
from .event import Event
from .hub import Hub

logger = logging.getLogger(__name__)

RESET_EVENT = "ssehub.reset"
# For clients that ignore an id without data (the polyfill): where they stand.
POSITION_EVENT = "ssehub.position"
REPLAY_PAGE = 500
LONG_POLL_RETRY_MS = 1000
# Under the polyfill's 45 s no-activity watchdog, with room for slow networks.
LONG_POLL_HOLD_SECONDS = 25.0
MAX_HISTORY = 100


@dataclasses.dataclass(frozen=True)
class StreamOptions:
    heartbeat_seconds: float
    retry_ms: int
    # End the response after the first events sent, or after the hold.
    long_poll: bool = False
    # Bytes of padding comment to send first (0: none).
    padding: int = 0
    # With no id to resume from: send the last this-many events per channel first.
    history: int = 0
    # Send every event unnamed, its type in the data (see Event.wrapped).
    wrap: bool = False


# Streams turned away at a limit come back after this, not at once.
TURNED_AWAY_RETRY_MS = 10_000


class _HistoryMoved(Exception):
    """History was trimmed past us mid-replay; the client's next resume reports it."""


def event_stream(
    hub: Hub,
    broker: Broker,
    channels: tuple[str, ...],
    last_event_id: str | None,
    options: StreamOptions,
) -> Iterator[bytes]:
    """Yield the SSE bytes of one subscriber until it leaves or must reconnect."""
    retry_ms = LONG_POLL_RETRY_MS if options.long_poll else options.retry_ms
    yield (wire.padding(options.padding) if options.padding else b"") + wire.retry(retry_ms) + wire.comment("ssehub")
    try:
        subscription = hub.subscribe(channels)
    except BrokerUnavailable as error:
        yield wire.comment(f"unavailable, reconnect later: {error}")
        return
    try:
        positions: dict[str, EventId] = {}
        sent = yield from _resume(broker, channels, parse_cursor(last_event_id, channels), positions, options)
        if options.long_poll and sent:
            return
        hold_until = time.monotonic() + LONG_POLL_HOLD_SECONDS
        while True:
            timeout = options.heartbeat_seconds
            if options.long_poll:
                timeout = min(timeout, hold_until - time.monotonic())
                if timeout <= 0:
                    return
            events = subscription.wait(timeout)
            if subscription.evicted:
                yield wire.comment("too slow to keep up; resume from your last id")
                return
            if subscription.closed:
                return
            if not events:
                yield wire.HEARTBEAT
                continue
            chunk = b"".join(_frames(events, positions, options.wrap))
            if chunk:
                yield chunk
                if options.long_poll:
                    return
    except (BrokerUnavailable, _HistoryMoved) as error:
        yield wire.comment(f"interrupted, reconnect: {error}")
    finally:
        hub.unsubscribe(subscription)
        logger.debug("stream on %s ended", ",".join(channels))


def turned_away(reason: str) -> Iterator[bytes]:
    """The whole body for a stream refused at a limit: 200, come back later (DESIGN)."""
    yield wire.retry(TURNED_AWAY_RETRY_MS) + wire.comment(f"{reason}; reconnect later")


def _resume(
    broker: Broker,
    channels: tuple[str, ...],
    requested: dict[str, EventId | None] | None,
    positions: dict[str, EventId],
    options: StreamOptions,
) -> Iterator[bytes]:
    """Fill `positions`, tell the client where it stands, replay what it missed.

    Returns the number of events sent (resets and replayed events).
    """
    if requested is None:
        return (yield from _start_fresh(broker, channels, positions, options))
    first_pages = {channel: broker.replay(channel, requested[channel], REPLAY_PAGE) for channel in channels}
    positions.update((channel, page.start) for channel, page in first_pages.items())
    sent = 0
    for channel, page in first_pages.items():
        if not page.exact:
            yield wire.encode_event(json.dumps({"channel": channel}), RESET_EVENT, format_cursor(positions, channel))
            sent += 1
    histories = [_paged(broker, channel, page) for channel, page in first_pages.items()]
    merged = heapq.merge(*histories, key=lambda event: event.id)
    if options.long_poll:
        merged = itertools.islice(merged, REPLAY_PAGE)
    for events in _batches(merged):
        yield b"".join(_frames(events, positions, options.wrap))
        sent += len(events)
    return sent


def _start_fresh(
    broker: Broker, channels: tuple[str, ...], positions: dict[str, EventId], options: StreamOptions
) -> Iterator[bytes]:
    """No id: start from now (after the last `history` events), and say where
    that is at once, so the client's first reconnect loses nothing."""
    positions.update((channel, broker.head(channel)) for channel in channels)
    recent = []
    if options.history:
        # Read after the heads: anything published in between is among them.
        recent = [broker.recent(channel, options.history) for channel in channels]
        for events in recent:
            if events:
                positions[events[0].channel] = _before(events[0].id)
    merged = list(heapq.merge(*recent, key=lambda event: event.id))
    if merged:
        yield b"".join(_frames(merged, positions, options.wrap))
        return len(merged)
    cursor = format_cursor(positions, channels[0])
    yield wire.encode_event("", POSITION_EVENT, cursor) if options.long_poll else wire.id_only(cursor)
    return 0


def _before(event_id: EventId) -> EventId:
    """A position just before `event_id`, so that event itself is sent."""
    ms, seq = event_id
    return (ms, seq - 1) if seq else (ms - 1, 2**64 - 1)


def _paged(broker: Broker, channel: str, first: Replay) -> Iterator[Event]:
    page = first
    while True:
        yield from page.events
        if not page.more:
            return
        page = broker.replay(channel, page.events[-1].id, REPLAY_PAGE)
        if not page.exact:
            raise _HistoryMoved(f"history of {channel} was trimmed during replay")


def _batches(events: Iterable[Event], max_bytes: int = REPLAY_PAGE_BYTES) -> Iterator[list[Event]]:
    """Events in groups of about `max_bytes`, so one write never holds more (issue 8, item 6)."""
    batch: list[Event] = []
    size = 0
    for event in events:
        batch.append(event)
        size += len(event.frame)
        if size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _frames(events: list[Event], positions: dict[str, EventId], wrap: bool = False) -> Iterator[bytes]:
    """Frames for events not yet sent on this stream, advancing `positions`."""
    single = len(positions) == 1
    for event in events:
        if event.id <= positions[event.channel]:
            continue
        positions[event.channel] = event.id
        if wrap:
            event = event.wrapped()
        yield event.frame if single else event.frame_with_cursor(format_cursor(positions, event.channel))
