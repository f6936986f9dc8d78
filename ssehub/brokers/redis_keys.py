"""Redis names for a channel: one Stream key that is also its notification channel.

The `{channel}` hash tag puts both in one Redis Cluster slot.
"""

from __future__ import annotations

KEY_PREFIX = "ssehub:"


def stream_key(channel: str) -> str:
    return f"{KEY_PREFIX}{{{channel}}}"


def channel_of(key: bytes) -> str:
    return key.decode()[len(KEY_PREFIX) + 1 : -1]
