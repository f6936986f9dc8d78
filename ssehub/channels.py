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


def check_pattern(text: object) -> str:
    """Return `text` if it is a channel pattern, else raise ValueError saying why.

    A pattern is a channel name, a name's prefix ending in `*`, or `*` alone;
    `*` stands for one or more characters, so `news.*` covers `news.sport`
    but not `news`.
    """
    if text == "*":
        return text
    if not isinstance(text, str) or not _NAME.fullmatch(text.removesuffix("*")) or len(text) > 128:
        shown = repr(text)[:60]
        raise ValueError(f"invalid channel pattern {shown}: use a channel name, a prefix ending in *, or * alone")
    return text


class ChannelPatterns:
    """A set of channel patterns (check_pattern), asked whether it covers a channel."""

    __slots__ = ("_names", "_prefixes")

    def __init__(self, patterns: tuple[str, ...] = ()):
        self._names = frozenset(p for p in patterns if not p.endswith("*"))
        self._prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))

    def covers(self, channel: str) -> bool:
        return channel in self._names or any(
            channel.startswith(prefix) and len(channel) > len(prefix) for prefix in self._prefixes
        )

    def first_not_covered(self, channels: tuple[str, ...]) -> str | None:
        return next((channel for channel in channels if not self.covers(channel)), None)
