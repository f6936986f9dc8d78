"""Channel names: the one rule for what a channel may be called (README, Watch a channel)."""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z0-9_\-.:@]{1,128}")

# A cursor carries a position per channel, so this bounds its length too.
MAX_CHANNELS_PER_STREAM = 32


def check_channel(name: object) -> str:
    """Return `name` if it is a valid channel name, else raise ValueError saying why."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name)[:60]
        raise ValueError(f"invalid channel name {shown}: use 1-128 of A-Z a-z 0-9 _ - . : @")
    return name
