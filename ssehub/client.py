"""Publishing from Python (issue 14, item 2): over HTTP, or straight through Redis.

    from ssehub.client import Publisher
    hub = Publisher("https://hub.example.com", token="...")
    event_id = hub.publish("orders", {"id": 17, "status": "shipped"})

Every publish carries an idempotency key (yours, or a new one), and a
timeout, a lost connection or a 503 is retried with backoff under that same
key for up to `retry_seconds`: the hub stores the event once however often it
is sent (issue 14, item 3). Other refusals raise PublishError at once. When
the retries run out, PublishError carries the key: publish again with it,
never with a new one, or the event may be stored twice. One client may be
shared by threads and greenlets (requests take turns on its connection).
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

# How long a publish is retried, and the backoff between tries (doubling, with jitter).
RETRY_SECONDS = 60.0
FIRST_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 5.0


class PublishError(Exception):
    """The hub refused the publish (4xx), or it stayed unavailable through every retry."""

    def __init__(self, message: str, status: int | None = None, idempotency_key: str | None = None):
        super().__init__(message)
        self.status = status
        # Publish again with this key (never a new one) if the error was unavailability.
        self.idempotency_key = idempotency_key


class _Retry(Exception):
    """Worth sending again under the same key."""


class Publisher:
    def __init__(
        self, base_url: str, token: str | None = None, timeout: float = 5.0, retry_seconds: float = RETRY_SECONDS
    ):
        """`base_url` is what /events and /publish hang off, e.g. https://example.com/hub;
        `timeout` bounds each try, `retry_seconds` all of them."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
        self._scheme, self._netloc, self._timeout = parts.scheme, parts.netloc, timeout
        self._path = parts.path.rstrip("/") + "/publish"
        self._headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        self._retry_seconds = retry_seconds
        self._connection: http.client.HTTPConnection | None = None
        self._turn = threading.Lock()

    def publish(self, channel: str, data: object, event: str | None = None, idempotency_key: str | None = None) -> str:
        """Publish one event; its id. `data`: a string, or any JSON value."""
        reply = self._send(_event(channel, data, event), idempotency_key)
        return reply["id"]

    def publish_many(self, events: Sequence[Mapping[str, object]], idempotency_key: str | None = None) -> list[str]:
        """Publish up to 100 events ({"channel", "data", "event"}) in one request; their ids."""
        body = [_event(e["channel"], e["data"], e.get("event")) for e in events]  # type: ignore[arg-type]
        return [reply["id"] for reply in self._send(body, idempotency_key)]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _send(self, body: object, key: str | None):
        payload = json.dumps(body, separators=(",", ":")).encode()
        key = key or uuid.uuid4().hex
        headers = {**self._headers, "Idempotency-Key": key}
        return with_retries(lambda: self._post(payload, headers), key, self._retry_seconds)

    def _post(self, payload: bytes, headers: dict[str, str]):
        with self._turn:
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
            message = reply.get("error") if isinstance(reply, dict) else reply
            raise PublishError(f"{status}: {message}", status, headers["Idempotency-Key"])
        return reply

    def _open(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            self._connection = kind(self._netloc, timeout=self._timeout)
        return self._connection


class RedisPublisher:
    """Publishes through Redis with the hub's function, as an application next to it would;
    the events are checked as the hub checks them, so only outages are retried."""

    def __init__(
        self,
        redis_url: str,
        history_size: int = 1000,
        max_event_bytes: int = 65536,
        retry_seconds: float = RETRY_SECONDS,
    ):
        """The settings are the hub's (HISTORY_SIZE, MAX_EVENT_BYTES); they go with each publish."""
        from .brokers.redis import RedisBroker

        self._broker = RedisBroker(redis_url, history_size=history_size, max_event_bytes=max_event_bytes)
        self._max_event_bytes, self._retry_seconds = max_event_bytes, retry_seconds

    def publish(self, channel: str, data: object, event: str | None = None, idempotency_key: str | None = None) -> str:
        return self.publish_many([{"channel": channel, "data": data, "event": event}], idempotency_key)[0]

    def publish_many(self, events: Sequence[Mapping[str, object]], idempotency_key: str | None = None) -> list[str]:
        from werkzeug.exceptions import HTTPException

        from .brokers import BrokerUnavailable, IdempotencyConflict
        from .cursor import format_id
        from .idempotency import Idempotency
        from .publish import check_message

        key = idempotency_key or uuid.uuid4().hex
        try:
            items = [_event(item["channel"], item["data"], item.get("event")) for item in events]  # type: ignore[arg-type]
            messages = [check_message(item, self._max_event_bytes) for item in items]
        except HTTPException as error:
            raise PublishError(str(error.description), error.code, key) from None
        fingerprint = uuid.uuid5(uuid.NAMESPACE_URL, json.dumps([[m.channel, m.data, m.event] for m in messages])).hex
        ids = []
        for index, message in enumerate(messages):
            once = Idempotency(f"client:{key}:{index}", fingerprint)

            def publish(message=message, once=once):
                try:
                    return self._broker.publish_once(message.channel, message.data, message.event, once)[0]
                except BrokerUnavailable as error:
                    raise _Retry(str(error)) from None
                except IdempotencyConflict as error:
                    raise PublishError(str(error), 422, key) from None

            ids.append(format_id(with_retries(publish, key, self._retry_seconds)))
        return ids

    def close(self) -> None:
        self._broker.close()


def with_retries(attempt: Callable[[], T], key: str, seconds: float) -> T:
    """`attempt()` until it does not raise _Retry, backing off, for up to `seconds`."""
    deadline, number = time.monotonic() + seconds, 0
    while True:
        try:
            return attempt()
        except _Retry as error:
            pause = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2**number) * random.uniform(0.5, 1.0)
            number += 1
            if time.monotonic() + pause > deadline:
                raise PublishError(
                    f"the hub stayed unavailable for {seconds:g} s ({error}); publish again with "
                    f"idempotency_key={key!r}, never a new key, or the event may be stored twice",
                    idempotency_key=key,
                ) from None
            time.sleep(pause)


def _event(channel: str, data: object, event: str | None) -> dict:
    """The JSON the hub takes: data as given if a string, else compact JSON (as the hub encodes it)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return {"channel": channel, "data": text, **({"event": event} if event is not None else {})}
