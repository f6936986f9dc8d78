"""A TCP proxy in front of redis-server that slows replies down or loses one.

A lost reply is the fault behind a write whose outcome is unknown: the
command ran, the connection died before its answer arrived (issue 8, item 3).
Slow replies widen the windows in which subscribers race (item 2). A hook
that runs before a command is forwarded lets a test act at an exact moment,
e.g. publish after the hub read a head but before its SSUBSCRIBE took effect.
"""

from __future__ import annotations

from collections.abc import Callable

import gevent
import gevent.event
import gevent.server
from gevent import socket


class RedisProxy:
    def __init__(self, redis_port: int):
        self._redis_port = redis_port
        # When set: the next connection that sends a command containing this
        # is cut as soon as Redis answers it, the answer unsent.
        self.drop_reply_to: bytes | None = None
        self.dropped = 0
        # Seconds each reply is held back.
        self.reply_delay = 0.0
        # When set: called with each chunk of commands before Redis gets it.
        self.before_forwarding: Callable[[bytes], None] | None = None
        self._server = gevent.server.StreamServer(("127.0.0.1", 0), self._handle)
        self._server.start()
        self.url = f"redis://127.0.0.1:{self._server.server_port}/0"

    def _handle(self, client: socket.socket, _address) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self._redis_port))
        except OSError:
            client.close()  # Redis is down: so is the proxied connection
            return
        doomed = gevent.event.Event()

        def requests() -> None:
            while chunk := client.recv(65536):
                if self.drop_reply_to is not None and self.drop_reply_to in chunk:
                    self.drop_reply_to = None
                    doomed.set()
                if self.before_forwarding is not None:
                    self.before_forwarding(chunk)
                upstream.sendall(chunk)

        def replies() -> None:
            while chunk := upstream.recv(65536):
                if doomed.is_set():
                    self.dropped += 1
                    return
                gevent.sleep(self.reply_delay)
                client.sendall(chunk)

        greenlets = [gevent.spawn(requests), gevent.spawn(replies)]
        gevent.joinall(greenlets, count=1)
        gevent.killall(greenlets)
        for sock in (client, upstream):
            sock.close()

    def before_subscribing(self, key: str, action: Callable[[], None]) -> None:
        """Run `action` once, just before Redis gets the next SSUBSCRIBE naming `key`:
        after the hub has read the head, before its subscription takes effect."""

        def hook(chunk: bytes) -> None:
            if b"SSUBSCRIBE" in chunk and key.encode() in chunk:
                self.before_forwarding = None
                action()

        self.before_forwarding = hook

    def stop(self) -> None:
        self._server.stop()
