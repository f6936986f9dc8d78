"""The body of one /events response: resume from history, then follow live.

Gapless by construction (Mercure's liveQueue): the live subscription opens
before history is read, and live events at or below the position reached are
skipped, so nothing falls between replay and live and nothing comes twice.
"""

from __future__ import annotations

import heapq
import json
import logging
from typing import Iterator

from . import wire
from .brokers import Broker, BrokerUnavailable
from .cursor import EventId, format_cursor, parse_cursor
from .event import Event
from .hub import Hub

logger = logging.getLogger(__name__)

RESET_EVENT = "ssehub.reset"
REPLAY_PAGE = 500


class _HistoryMoved(Exception):
    """History was trimmed past us mid-replay; the client's next resume reports it."""


def event_stream(
    hub: Hub,
    broker: Broker,
    channels: tuple[str, ...],
    last_event_id: str | None,
    heartbeat_seconds: float,
    retry_ms: int,
) -> Iterator[bytes]:
    """Yield the SSE bytes of one subscriber until it leaves or must reconnect."""
    yield wire.retry(retry_ms) + wire.comment("ssehub")
    try:
        subscription = hub.subscribe(channels)
    except BrokerUnavailable as error:
        yield wire.comment(f"unavailable, reconnect later: {error}")
        return
    try:
        positions: dict[str, EventId] = {}
        yield from _resume(broker, channels, parse_cursor(last_event_id, channels), positions)
        while True:
            events = subscription.wait(heartbeat_seconds)
            if subscription.evicted:
                yield wire.comment("too slow to keep up; resume from your last id")
                return
            if subscription.closed:
                return
            if not events:
                yield wire.HEARTBEAT
                continue
            chunk = b"".join(_frames(events, positions))
            if chunk:
                yield chunk
    except (BrokerUnavailable, _HistoryMoved) as error:
        yield wire.comment(f"interrupted, reconnect: {error}")
    finally:
        hub.unsubscribe(subscription)
        logger.debug("stream on %s ended", ",".join(channels))


def _resume(
    broker: Broker,
    channels: tuple[str, ...],
    requested: dict[str, EventId | None] | None,
    positions: dict[str, EventId],
) -> Iterator[bytes]:
    """Fill `positions`, telling the client where it stands and replaying what it missed."""
    if requested is None:
        # No id: start from now, and send the current cursor at once so the
        # client's first reconnect loses nothing.
        positions.update((channel, broker.head(channel)) for channel in channels)
        yield wire.id_only(format_cursor(positions, channels[0]))
        return
    first_pages = {channel: broker.replay(channel, requested[channel], REPLAY_PAGE) for channel in channels}
    positions.update((channel, page.start) for channel, page in first_pages.items())
    for channel, page in first_pages.items():
        if not page.exact:
            yield wire.encode_event(
                json.dumps({"channel": channel}), RESET_EVENT, format_cursor(positions, channel)
            )
    histories = [_paged(broker, channel, page.events) for channel, page in first_pages.items()]
    for events in _batches(heapq.merge(*histories, key=lambda event: event.id)):
        yield b"".join(_frames(events, positions))


def _paged(broker: Broker, channel: str, first: list[Event]) -> Iterator[Event]:
    page = first
    while True:
        yield from page
        if len(page) < REPLAY_PAGE:
            return
        nxt = broker.replay(channel, page[-1].id, REPLAY_PAGE)
        if not nxt.exact:
            raise _HistoryMoved(f"history of {channel} was trimmed during replay")
        page = nxt.events


def _batches(events: Iterator[Event], size: int = 100) -> Iterator[list[Event]]:
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _frames(events: list[Event], positions: dict[str, EventId]) -> Iterator[bytes]:
    """Frames for events not yet sent on this stream, advancing `positions`."""
    single = len(positions) == 1
    for event in events:
        if event.id <= positions[event.channel]:
            continue
        positions[event.channel] = event.id
        yield event.frame if single else event.frame_with_cursor(format_cursor(positions, event.channel))
