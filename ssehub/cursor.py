"""Event ids and the resume cursors built from them.

An event id is `<milliseconds>-<sequence>`, the shape of a Redis Stream id, in
both brokers, so ids order the same way everywhere. A stream on one channel
sends bare event ids; a stream on several sends a cursor holding a position
per channel (`news=17-0,chat=18-2`), its event's own channel first, so one
Last-Event-ID resumes every channel exactly and `lastEventId` names the
channel. `=` and `,` cannot occur in channel names, so the format is unambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

EventId = tuple[int, int]

_ID = re.compile(r"(\d{1,20})-(\d{1,20})")


# Redis Stream ids are two unsigned 64-bit numbers; Redis refuses larger ones.
_MAX_PART = 2**64 - 1


def parse_id(text: str) -> EventId | None:
    """The id as a comparable pair, or None when it is not one of ours."""
    match = _ID.fullmatch(text)
    if match is None:
        return None
    ms, seq = int(match[1]), int(match[2])
    return (ms, seq) if ms <= _MAX_PART and seq <= _MAX_PART else None


def format_id(event_id: EventId) -> str:
    return f"{event_id[0]}-{event_id[1]}"


def parse_cursor(text: str | None, channels: Iterable[str]) -> dict[str, EventId | None] | None:
    """Where a client stands on each channel.

    None when it sent no cursor (it starts from now); otherwise a position per
    channel, None for a channel it cannot resume exactly (a malformed id, a
    foreign one, or a cursor that does not cover that channel).
    """
    channels = list(channels)
    if text is None:
        return None
    text = text.strip()
    if "=" not in text:
        position = parse_id(text) if len(channels) == 1 else None
        return {channel: position for channel in channels}
    given: dict[str, EventId | None] = {}
    for part in text.split(","):
        channel, _, raw_id = part.partition("=")
        given[channel] = parse_id(raw_id)
    return {channel: given.get(channel) for channel in channels}


def format_cursor(positions: Mapping[str, EventId], first: str) -> str:
    """The id to send after an event on `first`: bare for one channel, else a vector."""
    if len(positions) == 1:
        return format_id(positions[first])
    parts = [f"{first}={format_id(positions[first])}"]
    parts.extend(f"{c}={format_id(p)}" for c, p in positions.items() if c != first)
    return ",".join(parts)
