"""How ssehub's data looks in Redis: key names, and events decoded from entries.

A channel has one Stream key that is also its notification channel; the
`{channel}` hash tag puts both in one Redis Cluster slot.
"""

from __future__ import annotations

import logging

from .. import wire
from ..cursor import EventId, parse_id
from ..event import Event
from . import BrokerUnavailable

logger = logging.getLogger(__name__)

KEY_PREFIX = "ssehub:"


def stream_key(channel: str) -> str:
    return f"{KEY_PREFIX}{{{channel}}}"


def channel_of(key: bytes) -> str:
    return key.decode()[len(KEY_PREFIX) + 1 : -1]


def notification(raw_id: bytes, raw_previous: bytes, event: str | None, data: str) -> bytes:
    """What ssehub.lua's publish announces: the id, the id before it, the type and the data."""
    return b"\n".join((raw_id, raw_previous, (event or "").encode(), data.encode()))


def event_from_entry(channel: str, entry_id: bytes, fields: list[bytes]) -> Event:
    values = dict(zip(fields[::2], fields[1::2], strict=False))
    return event_from_parts(channel, entry_id, values.get(b"e", b""), values.get(b"d", b""))


def event_from_parts(channel: str, raw_id: bytes, raw_type: bytes, raw_data: bytes) -> Event:
    """An Event from what Redis holds. Writes normally pass ssehub.lua's checks,
    but a raw XADD could store a type with a line break: it is dropped, not sent."""
    event_type = raw_type.decode("utf-8", "replace") or None
    try:
        wire.check_field("event", event_type or "")
    except ValueError:
        logger.warning("dropped an invalid event type on %s %s (written around ssehub_publish)", channel, raw_id)
        event_type = None
    return Event(channel, parse_stream_id(raw_id), raw_data.decode("utf-8", "replace"), event_type)


def parse_stream_id(raw: bytes | str) -> EventId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    event_id = parse_id(text)
    if event_id is None:
        raise BrokerUnavailable(f"Redis returned {text!r} where a stream id was expected")
    return event_id
