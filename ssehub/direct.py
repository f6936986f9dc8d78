"""Live streams that need no greenlet: the server hands their connection over.

A greenlet waiting for a stream's next event cost about 10 KB (its saved C
stack and frames, pywsgi's request objects), most of an idle subscriber's
memory, and waking it, a timeout per wait and pywsgi's framing per write were
most of a delivery's CPU (issue 12). Once a one-channel stream has caught up,
pywsgi's handler hands its connection over: the stream becomes a
DetachedStream, fed by the fan-out, which writes each event's chunk (framed
once per event) with one non-blocking send. Only a socket that cannot take a
whole chunk gets a greenlet, for as long as it takes to drain: the rest of
that chunk first, then what queued meanwhile, several events per write.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable

import gevent
import gevent.socket

from . import expiry, wire
from .cursor import EventId
from .event import Event, unsent, unsent_frames
from .limits import Lease
from .meters import Meters
from .subscription import Subscription

logger = logging.getLogger(__name__)

# The key under which server.TimedHandler offers itself (a weak reference, so
# that the request's environ and its handler do not keep each other alive).
ENVIRON_KEY = "ssehub.handler"
TOO_SLOW = wire.comment("too slow to keep up; resume from your last id")
_LAST_CHUNK = b"0\r\n\r\n"
# Sockets a DetachedStream now owns: the server must not close them when their
# request is done (server.HubServer.do_close).
_handed_over: weakref.WeakSet = weakref.WeakSet()


def handed_over(connection: gevent.socket.socket) -> bool:
    """Whether a DetachedStream took `connection` over (asked once, by the server)."""
    if connection in _handed_over:
        _handed_over.discard(connection)
        return True
    return False


class DetachedStream:
    """One live stream's connection, written to by the fan-out and the hub's heartbeat."""

    __slots__ = (
        "_connection",
        "_socket",
        "_chunked",
        "_wrap",
        "_positions",
        "_channel",
        "_subscription",
        "_end",
        "_timeout",
        "_hangup",
        "_meters",
        "idle",
    )

    def __init__(
        self,
        connection: gevent.socket.socket,
        chunked: bool,
        positions: dict[str, EventId],
        subscription: Subscription,
        end: Callable[[], None],
        write_timeout: float,
        wrap: bool,
        meters: Meters,
    ):
        self._connection = connection
        self._socket = connection._sock  # the non-blocking socket inside gevent's
        self._chunked = chunked
        self._wrap = wrap
        self._positions = positions
        (self._channel,) = positions
        self._subscription = subscription
        self._end: Callable[[], None] | None = end
        self._timeout = write_timeout
        # Readable means the client hung up (or sent bytes nobody asked for):
        # end the stream then, not at the next heartbeat, so a crowd that
        # leaves gives its descriptors and limits back at once (as Nchan does).
        self._hangup = gevent.get_hub().loop.io(self._socket.fileno(), 1)
        self._meters = meters
        # True while no greenlet is draining: the fan-out may send itself.
        self.idle = True

    def start(self) -> None:
        """Take over; events that queued while the stream caught up go out first.
        A stream evicted or ended while it caught up ends here, as it would have."""
        subscription = self._subscription
        subscription.stream = self
        self._hangup.start(self._readable)
        if subscription.evicted or subscription.closed or subscription.expired:
            self.end()
        elif subscription.queue:
            self._drain_from(b"", 0, ())

    def send(self, event) -> int:
        """From the fan-out, on an idle stream: straight to the socket. The
        bytes of the stream written now, which the fan-out counts (0: none, or
        a drainer took them over and counts them)."""
        if event.id <= self._positions[self._channel]:
            return 0
        self._positions[self._channel] = event.id
        if self._wrap:
            event = event.wrapped()
        return self._write(event.chunk() if self._chunked else event.frame, len(event.frame), event)

    def send_heartbeat(self) -> None:
        self._meters.written(self._write(self._framed(wire.HEARTBEAT), len(wire.HEARTBEAT)))

    def finish(self, last_words: bytes = b"") -> None:
        """End the response (best effort: a socket that is full gets only the close) and release the stream."""
        end, self._end = self._end, None
        if end is None:
            return
        self._hangup.stop()
        self._subscription.stream = None
        data = self._framed(last_words) + (_LAST_CHUNK if self._chunked else b"")
        try:
            if self._socket.send(data) == len(data):
                self._meters.written(len(last_words))
        except OSError:
            pass
        # The bare socket, closed at once: gevent's would wait for pywsgi's
        # reader of the request, which only the garbage collector frees.
        self._socket.close()
        end()

    def end(self) -> None:
        """End the stream, saying why when the client must act on it."""
        self.finish(self._last_words())

    def _last_words(self) -> bytes:
        """What an ending stream says: why it ends, when the client must act on it."""
        subscription = self._subscription
        if subscription.evicted:
            return TOO_SLOW
        if subscription.expired:
            return expiry.token_expired(self._positions, self._channel)
        return b""

    def _readable(self) -> None:
        try:
            if self._socket.recv(4096):
                return  # bytes from a client that should only read: ignored
        except BlockingIOError:
            return
        except OSError:
            pass
        self.finish()

    def _write(self, data: bytes, size: int, event: Event | None = None) -> int:
        """Send `data`, which frames `size` bytes of the stream (carrying `event`):
        `size` when it went whole, else 0 (a drainer sends the rest, and counts it)."""
        try:
            sent = self._socket.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.finish()  # the client is gone
            return 0
        if sent < len(data):
            self._drain_from(data[sent:], size, () if event is None else (event,))
            return 0
        return size

    def _drain_from(self, pending: bytes, size: int, events: tuple[Event, ...] | list[Event]) -> None:
        self.idle = False
        gevent.spawn(self._drain, pending, size, events)

    def _drain(self, pending: bytes, size: int, events: tuple[Event, ...] | list[Event]) -> None:
        """A greenlet while the socket is full: write `pending` (the rest of
        `size` bytes carrying `events`), then the queue, until nothing is left."""
        subscription = self._subscription
        try:
            while True:
                self._send_all(pending)
                self._meters.written(size, events)
                if subscription.closed or subscription.evicted or subscription.expired:
                    self.end()
                    return
                events = unsent(subscription.take(), self._positions)
                frames = b"".join(unsent_frames(events, self._positions, self._wrap))
                pending, size = self._framed(frames), len(frames)
                if not pending:
                    self.idle = True
                    return
        except OSError as error:  # includes the write timeout
            if isinstance(error, TimeoutError) and not expiry.has_passed(subscription.expires_at):
                logger.info("dropped a subscriber: a write took over %s s", self._timeout)
            self.finish()
        except Exception:
            # A bug must not leave the stream neither idle nor draining, holding its socket.
            logger.exception("a stream's drain failed; ending it")
            self.finish()

    def _send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self._socket.send(view) :]
            except BlockingIOError:
                wait = expiry.write_wait(self._timeout, self._subscription.expires_at)
                gevent.socket.wait_write(self._socket.fileno(), timeout=wait, timeout_exc=TimeoutError())

    def _framed(self, data: bytes) -> bytes:
        return wire.chunk(data) if self._chunked and data else data


class Handover:
    """A stream's way out of pywsgi: its handler, and its place under the limits."""

    __slots__ = ("_handler", "_lease", "_meters")

    def __init__(self, handler, lease: Lease, meters: Meters):
        self._handler = handler
        self._lease = lease
        self._meters = meters

    def detach(self, subscription: Subscription, positions: dict[str, EventId], wrap: bool, end) -> None:
        """Hand the live stream over to a DetachedStream; pywsgi then finishes
        the request without ending the response or closing the connection.
        `end` runs when the stream ends."""
        handler = self._handler
        connection = handler.socket
        chunked = handler.response_use_chunked
        handler.response_use_chunked = False  # pywsgi must not write the last chunk,
        handler.close_connection = True  # nor read another request,
        handler.socket = None  # nor close the socket (and the server asks handed_over)
        _handed_over.add(connection)
        lease = self._lease

        def ended() -> None:
            end()
            lease.release()

        stream = DetachedStream(
            connection, chunked, positions, subscription, ended, handler.write_timeout, wrap, self._meters
        )
        lease.handed_over = True
        stream.start()


def handover(environ: dict, lease: Lease, channels: tuple[str, ...], meters: Meters) -> Handover | None:
    """A Handover when the stream can leave its greenlet: one channel (the bare id
    is the cursor, so one frame fits every subscriber), served by our pywsgi
    handler over plain TCP (not TLS, not another server)."""
    offered = environ.get(ENVIRON_KEY)
    handler = offered() if offered is not None else None
    if handler is None or len(channels) != 1 or type(handler.socket) is not gevent.socket.socket:
        return None
    return Handover(handler, lease, meters)
