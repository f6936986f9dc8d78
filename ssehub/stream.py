"""The body of one /events response: resume from history, then follow live.

Gapless by construction (Mercure's liveQueue): the live subscription opens
before history is read, and live events at or below the position reached are
skipped, so nothing falls between replay and live and nothing comes twice.
Two loops share the resume step: a stream follows live events until the
client leaves; a long poll (for the EventSource polyfill) ends after the first
events it sends, or after a hold, and the client's next id is the only state.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import time
from collections.abc import Generator, Iterable, Iterator

from . import direct, expiry, wire
from .brokers import REPLAY_PAGE_BYTES, Broker, BrokerUnavailable
from .brokers.history import PAGE, by_id, pages_from
from .cursor import EventId, format_cursor, parse_cursor
from .event import Event, unsent, unsent_frames
from .hub import Hub, Subscription

logger = logging.getLogger(__name__)

RESET_EVENT = "ssehub.reset"
# For clients that ignore an id without data (the polyfill): where they stand.
POSITION_EVENT = "ssehub.position"
LONG_POLL_RETRY_MS = 1000
# Under the polyfill's 45 s no-activity watchdog, with room for slow networks.
LONG_POLL_HOLD_SECONDS = 25.0
MAX_HISTORY = 100


@dataclasses.dataclass(frozen=True)
class StreamOptions:
    retry_ms: int
    # End the response after the first events sent, or after the hold.
    long_poll: bool = False
    # Bytes of padding comment to send first (0: none).
    padding: int = 0
    # With no id to resume from: send the last this-many events per channel first.
    history: int = 0
    # Send every event unnamed, its type in the data (see Event.wrapped).
    wrap: bool = False
    # Epoch seconds when the stream's token runs out (None: never): the stream
    # then ends with ssehub.token-expired.
    expires_at: float | None = None


# Streams turned away at a limit come back after this, not at once.
TURNED_AWAY_RETRY_MS = 10_000


@dataclasses.dataclass
class _Resumed:
    """Where a stream stands on each channel once it has caught up, and how
    many events (resets included) catching up sent."""

    positions: dict[str, EventId]
    sent: int


def event_stream(
    hub: Hub,
    broker: Broker,
    channels: tuple[str, ...],
    last_event_id: str | None,
    options: StreamOptions,
    handover: direct.Handover | None = None,
) -> Generator[bytes, None, None]:
    """Yield the SSE bytes of one subscriber until it leaves or must reconnect.

    With a `handover`, the stream leaves its response once it has caught up:
    the connection lives on without a greenlet (direct.py) and this returns.
    """
    body = _body(hub, broker, channels, last_event_id, options, handover)
    try:
        for chunk in body:
            yield chunk
            hub.meters.written(len(chunk))  # the server wrote it before asking for more
    finally:
        body.close()


def _body(
    hub: Hub,
    broker: Broker,
    channels: tuple[str, ...],
    last_event_id: str | None,
    options: StreamOptions,
    handover: direct.Handover | None,
) -> Generator[bytes, None, None]:
    retry_ms = LONG_POLL_RETRY_MS if options.long_poll else options.retry_ms
    yield (wire.padding(options.padding) if options.padding else b"") + wire.retry(retry_ms) + wire.comment("ssehub")
    try:
        subscription = hub.subscribe(channels)
    except BrokerUnavailable as error:
        yield wire.comment(f"unavailable, reconnect later: {error}")
        return
    if options.expires_at is not None:
        subscription.expire_at(options.expires_at)
    subscription_ends_here = True
    try:
        requested = parse_cursor(last_event_id, channels)
        resumed = yield from _resume(hub, broker, subscription, requested, options)
        if options.long_poll:
            yield from _follow_long_poll(hub, subscription, resumed, options)
        elif handover is not None:
            handover.detach(subscription, resumed.positions, options.wrap, lambda: _ended(hub, subscription))
            subscription_ends_here = False  # the detached stream ends it
        else:
            yield from _follow(hub, subscription, resumed, options)
    except BrokerUnavailable as error:
        yield wire.comment(f"interrupted, reconnect: {error}")
    finally:
        if subscription_ends_here:
            _ended(hub, subscription)


def _ended(hub: Hub, subscription: Subscription) -> None:
    hub.unsubscribe(subscription)
    logger.debug("stream on %s ended", ",".join(subscription.channels))


def _follow(hub: Hub, subscription: Subscription, resumed: _Resumed, options: StreamOptions) -> Iterator[bytes]:
    """A stream that keeps its greenlet (several channels, or another server):
    live events as they come, a heartbeat when the hub's timer says so."""
    while True:
        events = subscription.wait()
        if subscription.evicted:
            yield direct.TOO_SLOW
            return
        if subscription.expired:
            yield expiry.token_expired(resumed.positions, subscription.channels[0])
            return
        if subscription.closed:
            return
        fresh = unsent(events, resumed.positions)
        if fresh:
            yield b"".join(unsent_frames(fresh, resumed.positions, options.wrap))
            hub.meters.written(0, fresh)
        elif subscription.take_heartbeat():
            yield wire.HEARTBEAT


def _follow_long_poll(
    hub: Hub, subscription: Subscription, resumed: _Resumed, options: StreamOptions
) -> Iterator[bytes]:
    """One long poll: it ends once it has sent events, or after the hold."""
    if subscription.expired:
        yield expiry.token_expired(resumed.positions, subscription.channels[0])
        return
    if resumed.sent:
        return
    hold_until = time.monotonic() + LONG_POLL_HOLD_SECONDS
    while (remaining := hold_until - time.monotonic()) > 0:
        events = subscription.wait(timeout=remaining)
        if subscription.expired:
            yield expiry.token_expired(resumed.positions, subscription.channels[0])
            return
        if subscription.evicted or subscription.closed:
            return
        fresh = unsent(events, resumed.positions)
        if fresh:
            yield b"".join(unsent_frames(fresh, resumed.positions, options.wrap))
            hub.meters.written(0, fresh)
            return
        if subscription.take_heartbeat():
            yield wire.HEARTBEAT


def expired_body() -> Iterator[bytes]:
    """The whole body for a stream whose token had expired when it asked."""
    yield expiry.token_expired()


def turned_away(reason: str) -> Iterator[bytes]:
    """The whole body for a stream refused at a limit: 200 (EventSource gives up
    for good on any other status), come back later."""
    yield wire.retry(TURNED_AWAY_RETRY_MS) + wire.comment(f"{reason}; reconnect later")


def _resume(
    hub: Hub,
    broker: Broker,
    subscription: Subscription,
    requested: dict[str, EventId | None] | None,
    options: StreamOptions,
) -> Generator[bytes, None, _Resumed]:
    """Tell the client where it stands and replay what it missed (a long
    poll at most one page of it: the next poll asks for the rest). A replay
    stops where it is when the stream's token expires: the follow step says so."""
    channels = subscription.channels
    if requested is None:
        return (yield from _start_fresh(hub, broker, channels, options))
    first_pages = {channel: hub.replay(channel, requested[channel], PAGE) for channel in channels}
    resumed = _Resumed({channel: page.start for channel, page in first_pages.items()}, 0)
    exact = all(page.exact for page in first_pages.values())
    if not (options.long_poll and exact):  # a long poll carries an id each time: only its resets count
        hub.meters.resumes["exact" if exact else "reset"] += 1
    for channel, page in first_pages.items():
        if not page.exact:
            reset = json.dumps({"channel": channel})
            yield wire.encode_event(reset, RESET_EVENT, format_cursor(resumed.positions, channel))
            resumed.sent += 1
    missed = by_id(pages_from(hub.replay, channel, page) for channel, page in first_pages.items())
    if options.long_poll:
        missed = itertools.islice(missed, PAGE)
    for events in _batches(missed):
        if subscription.expired:
            break
        yield b"".join(unsent_frames(events, resumed.positions, options.wrap))
        resumed.sent += len(events)
    return resumed


def _start_fresh(
    hub: Hub, broker: Broker, channels: tuple[str, ...], options: StreamOptions
) -> Generator[bytes, None, _Resumed]:
    """No id: start from now (after the last `history` events), and say where
    that is at once, so the client's first reconnect loses nothing."""
    resumed = _Resumed({channel: hub.head(channel) for channel in channels}, 0)
    recent = []
    if options.history:
        # Read after the heads: anything published in between is among them.
        recent = [broker.recent(channel, options.history) for channel in channels]
        for events in recent:
            if events:
                resumed.positions[events[0].channel] = _before(events[0].id)
    events = list(by_id(recent)) if recent else []
    if events:
        yield b"".join(unsent_frames(events, resumed.positions, options.wrap))
        resumed.sent = len(events)
        return resumed
    cursor = format_cursor(resumed.positions, channels[0])
    # The polyfill ignores an id that comes without data: it gets an event.
    yield wire.encode_event("", POSITION_EVENT, cursor) if options.long_poll else wire.id_only(cursor)
    return resumed


def _before(event_id: EventId) -> EventId:
    """A position just before `event_id`, so that event itself is sent."""
    ms, seq = event_id
    return (ms, seq - 1) if seq else (ms - 1, 2**64 - 1)


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
