"""Writing a parked stream's events straight to its socket from the fan-out loop.

The slow part of a delivery was never the send: it was waking the stream's
greenlet, a timeout per wait, and pywsgi framing and `sendall` per write
(issue 12). While a one-channel stream has nothing queued, the hub hands each
event's ready-made chunk to the socket with one non-blocking send. Only when
the socket cannot take it all does the stream's greenlet take over, writing
what is left first and then the queue, so order and framing are kept.
"""

from __future__ import annotations

import gevent.socket

from . import wire
from .cursor import EventId
from .event import Event

# The key under which server.TimedHandler offers itself to the app.
ENVIRON_KEY = "ssehub.handler"


class DirectWriter:
    """Non-blocking writes to one stream's socket, for frames that need no
    per-stream work (one channel: the bare id is the cursor)."""

    __slots__ = ("_socket", "_raw", "_chunked", "_wrap", "_positions", "_channel", "pending", "broken")

    def __init__(self, handler, positions: dict[str, EventId], wrap: bool):
        self._socket = handler.socket
        # gevent's socket is a cooperative wrapper around a non-blocking one.
        self._raw = handler.socket._sock
        self._chunked = handler.response_use_chunked
        self._wrap = wrap
        self._positions = positions
        (self._channel,) = positions
        # Bytes already framed that must reach the socket before anything else.
        self.pending = b""
        self.broken = False

    def send(self, event: Event) -> bool:
        """Send `event` unless this stream has it already; False when the
        stream's greenlet must take over (the socket was full or is gone)."""
        if event.id <= self._positions[self._channel]:
            return True
        self._positions[self._channel] = event.id
        if self._wrap:
            event = event.wrapped()
        return self._send(event.chunk() if self._chunked else event.frame)

    def send_heartbeat(self) -> bool:
        return self._send(_HEARTBEAT_CHUNK if self._chunked else wire.HEARTBEAT)

    def flush(self) -> None:
        """Write what a full socket left over, cooperatively and within the
        write timeout (raises the socket's error, which ends the stream)."""
        pending, self.pending = self.pending, b""
        self._socket.sendall(pending)

    def _send(self, data: bytes) -> bool:
        try:
            sent = self._raw.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.broken = True
            return False
        if sent == len(data):
            return True
        self.pending = data[sent:]
        return False


_HEARTBEAT_CHUNK = wire.chunk(wire.HEARTBEAT)


def writer_for(handler, positions: dict[str, EventId], wrap: bool) -> DirectWriter | None:
    """A DirectWriter for a stream whose head `handler` has sent, or None where
    frames must go through the server (several channels, TLS, or a server
    other than ours, which offers no handler)."""
    if handler is None or len(positions) != 1 or type(handler.socket) is not gevent.socket.socket:
        return None
    return DirectWriter(handler, positions, wrap)
