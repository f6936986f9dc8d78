"""One published event, encoded for the wire once, when the hub first sees it.

Brokers create these; the hub fans the same bytes out to every subscriber.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator

from . import wire
from .cursor import EventId, format_cursor, format_id


class Event:
    """An event on one channel with its id and its ready-made SSE frame."""

    __slots__ = ("channel", "id", "type", "data", "frame", "arrived", "_id_length", "_wrapped", "_chunk")

    def __init__(self, channel: str, event_id: EventId, data: str, type: str | None = None):
        self.channel = channel
        self.id = event_id
        self.type = type
        self.data = data
        id_line = wire.id_line(format_id(event_id))
        self._id_length = len(id_line)
        # The frame for a one-channel stream, whose cursor is the bare id.
        self.frame = id_line + wire.event_body(data, type)
        # When it reached this process (time.monotonic()), for the delivery latency (meters.py).
        self.arrived = time.monotonic()
        self._wrapped: Event | None = None
        self._chunk: bytes | None = None

    def chunk(self) -> bytes:
        """`frame` as one HTTP/1.1 chunk, framed once for every stream that
        the fan-out writes to itself (direct.DetachedStream). Built once."""
        if self._chunk is None:
            self._chunk = wire.chunk(self.frame)
        return self._chunk

    def forget_chunk(self) -> None:
        """Drop the chunk once the fan-out is done: the embedded broker keeps
        its events as history, which would otherwise hold each frame twice."""
        self._chunk = None
        if self._wrapped is not None:
            self._wrapped._chunk = None

    def wrapped(self) -> Event:
        """This event unnamed, `{"event": type, "data": data}` as its data, for
        clients that cannot name every type in advance (native EventSource only
        dispatches named events to listeners for that name). Built once."""
        if self._wrapped is None:
            body = json.dumps({"event": self.type or "message", "data": self.data}, ensure_ascii=False)
            self._wrapped = Event(self.channel, self.id, body)
            self._wrapped.arrived = self.arrived
        return self._wrapped

    def frame_with_cursor(self, cursor: str) -> bytes:
        """The frame for a several-channel stream: same body, that stream's cursor as id."""
        return wire.id_line(cursor) + memoryview(self.frame)[self._id_length :]

    def __repr__(self) -> str:
        return f"Event({self.channel!r}, {format_id(self.id)!r}, type={self.type!r})"


def unsent_frames(events: Iterable[Event], positions: dict[str, EventId], wrap: bool = False) -> Iterator[bytes]:
    """Frames for events not yet sent on a stream, advancing its `positions`
    (one channel: the bare id is the cursor; several: each frame gets the cursor)."""
    single = len(positions) == 1
    for event in events:
        if event.id <= positions[event.channel]:
            continue
        positions[event.channel] = event.id
        if wrap:
            event = event.wrapped()
        yield event.frame if single else event.frame_with_cursor(format_cursor(positions, event.channel))


def unsent(events: list[Event], positions: dict[str, EventId]) -> list[Event]:
    """The `events` a stream at `positions` has not had (without moving it)."""
    return [event for event in events if event.id > positions[event.channel]]
