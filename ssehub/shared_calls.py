"""Identical reads in flight at once share one call.

After a restart, thousands of clients reconnect with the same Last-Event-ID
within a second; each asking Redis the same question would queue them behind
each other (issue 12, item 4). The first caller asks; the rest wait for its answer.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import gevent.event

T = TypeVar("T")


class _Interrupted(Exception):
    """The caller that was asking was killed (its client left); ask again."""


class SharedCalls:
    def __init__(self) -> None:
        self._running: dict[Hashable, gevent.event.AsyncResult] = {}

    def call(self, key: Hashable, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)`, or the answer of the call with the same `key` already running."""
        while (running := self._running.get(key)) is not None:
            try:
                return running.get()
            except _Interrupted:
                continue
        result = self._running[key] = gevent.event.AsyncResult()
        try:
            value = function(*args)
        except Exception as error:
            result.set_exception(error)
            raise
        except BaseException:
            result.set_exception(_Interrupted())
            raise
        finally:
            del self._running[key]
        result.set(value)
        return value
