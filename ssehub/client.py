"""Publishing from Python (issue 14, item 2): over HTTP, or straight through Redis.

    from ssehub.client import Publisher
    hub = Publisher("https://hub.example.com", token="...")
    event_id = hub.publish("orders", {"id": 17, "status": "shipped"})

Every publish carries an idempotency key, and a timeout, a lost connection or
a 503 is retried with backoff under the same key: the hub stores the event
once however often it is sent (issue 14, item 3). Other refusals raise
PublishError at once. Not for use from several threads at once.
"""

from __future__ import annotations

import http.client
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

# Attempts per publish, and the backoff between them (doubling, with jitter).
ATTEMPTS = 6
FIRST_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 5.0


class PublishError(Exception):
    """The hub refused the publish (4xx), or it stayed unavailable through every retry."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _Retry(Exception):
    """Worth sending again under the same key."""


class Publisher:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 5.0):
        """`base_url` is what /events and /publish hang off, e.g. https://example.com/hub."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
        self._scheme, self._netloc, self._timeout = parts.scheme, parts.netloc, timeout
        self._path = parts.path.rstrip("/") + "/publish"
        self._headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        self._connection: http.client.HTTPConnection | None = None

    def publish(self, channel: str, data: object, event: str | None = None) -> str:
        """Publish one event; its id. `data`: a string, or any JSON value."""
        reply = self._send(_event(channel, data, event))
        return reply["id"]

    def publish_many(self, events: Sequence[Mapping[str, object]]) -> list[str]:
        """Publish up to 100 events ({"channel", "data", "event"}) in one request; their ids."""
        replies = self._send([_event(e["channel"], e["data"], e.get("event")) for e in events])  # type: ignore[arg-type]
        return [reply["id"] for reply in replies]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _send(self, body: object):
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers = {**self._headers, "Idempotency-Key": uuid.uuid4().hex}
        return with_retries(lambda: self._post(payload, headers))

    def _post(self, payload: bytes, headers: dict[str, str]):
        try:
            connection = self._open()
            connection.request("POST", self._path, body=payload, headers=headers)
            response = connection.getresponse()
            status, content = response.status, response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()  # a timeout leaves the connection mid-response
            raise _Retry(f"{type(error).__name__}: {error}") from None
        try:
            reply = json.loads(content)
        except ValueError:
            reply = {"error": content[:200].decode("utf-8", "replace")}
        if status in (502, 503, 504):
            raise _Retry(f"{status}: {reply.get('error') if isinstance(reply, dict) else reply}")
        if status != 201:
            raise PublishError(f"{status}: {reply.get('error') if isinstance(reply, dict) else reply}", status)
        return reply

    def _open(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            self._connection = kind(self._netloc, timeout=self._timeout)
        return self._connection


class RedisPublisher:
    """Publishes through Redis with the hub's function, as an application next to it would."""

    def __init__(self, redis_url: str, history_size: int = 1000, max_event_bytes: int = 65536):
        """The settings are the hub's (HISTORY_SIZE, MAX_EVENT_BYTES); they go with each publish."""
        from .brokers.redis import RedisBroker

        self._broker = RedisBroker(redis_url, history_size=history_size, max_event_bytes=max_event_bytes)

    def publish(self, channel: str, data: object, event: str | None = None) -> str:
        return self.publish_many([{"channel": channel, "data": data, "event": event}])[0]

    def publish_many(self, events: Sequence[Mapping[str, object]]) -> list[str]:
        from .brokers import BrokerUnavailable, IdempotencyConflict
        from .cursor import format_id
        from .idempotency import Idempotency

        key = uuid.uuid4().hex
        ids = []
        for index, item in enumerate(events):
            message = _event(item["channel"], item["data"], item.get("event"))  # type: ignore[arg-type]
            once = Idempotency(f"client:{key}:{index}", key)

            def publish(message=message, once=once):
                try:
                    return self._broker.publish(message["channel"], message["data"], message.get("event"), once)
                except BrokerUnavailable as error:
                    raise _Retry(str(error)) from None
                except IdempotencyConflict as error:
                    raise PublishError(str(error), 422) from None

            ids.append(format_id(with_retries(publish)))
        return ids

    def close(self) -> None:
        self._broker.close()


def with_retries(attempt: Callable[[], T]) -> T:
    """`attempt()` until it does not raise _Retry, backing off; PublishError after ATTEMPTS."""
    for number in range(ATTEMPTS - 1):
        try:
            return attempt()
        except _Retry:
            time.sleep(min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2**number) * random.uniform(0.5, 1.0))
    try:
        return attempt()
    except _Retry as error:
        raise PublishError(f"the hub stayed unavailable through {ATTEMPTS} attempts: {error}") from None


def _event(channel: str, data: object, event: str | None) -> dict:
    """The JSON the hub takes: data as given if a string, else compact JSON (as the hub encodes it)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return {"channel": channel, "data": text, **({"event": event} if event is not None else {})}
