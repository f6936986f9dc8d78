"""Test-side SSE client: a parser that follows the WHATWG rules, and a live reader.

The parser is deliberately independent of ssehub.wire, so wire tests compare
the hub against the specification rather than against itself.
"""

from __future__ import annotations

import codecs
import dataclasses
import http.client
import random
import socket
import struct
import time
from collections.abc import Callable

import gevent


@dataclasses.dataclass
class Message:
    type: str
    data: str
    last_event_id: str


class Parser:
    """Incremental parser per HTML Living Standard, "Interpreting an event stream"."""

    def __init__(self, last_event_id: str = "") -> None:
        """`last_event_id`: the id an EventSource keeps from its previous connection."""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._buffer = ""
        self._first = True
        self._data = ""
        self._type = ""
        self._id_buffer = last_event_id
        self.last_event_id = last_event_id
        self.retry: int | None = None
        self.comments: list[str] = []

    def feed(self, chunk: bytes) -> list[Message]:
        text = self._decoder.decode(chunk)
        if self._first and text:
            text = text.removeprefix("\ufeff")
            self._first = False
        self._buffer += text
        messages: list[Message] = []
        while True:
            line, found = self._next_line()
            if not found:
                return messages
            message = self._line(line)
            if message is not None:
                messages.append(message)

    def _next_line(self) -> tuple[str, bool]:
        for index, char in enumerate(self._buffer):
            if char == "\n":
                line, self._buffer = self._buffer[:index], self._buffer[index + 1 :]
                return line, True
            if char == "\r":
                if index + 1 == len(self._buffer):
                    return "", False  # a LF may follow in the next chunk
                skip = 2 if self._buffer[index + 1] == "\n" else 1
                line, self._buffer = self._buffer[:index], self._buffer[index + skip :]
                return line, True
        return "", False

    def _line(self, line: str) -> Message | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:])
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._type = value
        elif field == "data":
            self._data += value + "\n"
        elif field == "id" and "\0" not in value:
            self._id_buffer = value
        elif field == "retry" and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> Message | None:
        self.last_event_id = self._id_buffer
        data, kind = self._data, self._type
        self._data = self._type = ""
        if data == "":
            return None
        return Message(kind or "message", data[:-1] if data.endswith("\n") else data, self.last_event_id)


def parse(stream: bytes) -> list[Message]:
    return Parser().feed(stream)


class _SmallWindowConnection(http.client.HTTPConnection):
    """A connection whose receive buffer is set before connecting, so the
    window it offers stays small and the sender's writes block early."""

    receive_buffer = 4096

    def connect(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
        self.sock.settimeout(self.timeout)
        self.sock.connect((self.host, self.port))


class StreamReader:
    """An open /events response read with deadlines, like a browser's EventSource."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        headers: dict[str, str] | None = None,
        timeout: float = 5,
        small_window: bool = False,
    ):
        connection_class = _SmallWindowConnection if small_window else http.client.HTTPConnection
        self.connection = connection_class(host, port, timeout=timeout)
        self.connection.request("GET", path, headers=headers or {})
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.headers = self.response.headers
        self.parser = Parser()
        self.messages: list[Message] = []
        self.raw = b""
        self.ended = False

    def read_until(self, done: Callable[[StreamReader], bool], timeout: float = 5) -> StreamReader:
        deadline = time.monotonic() + timeout
        while not done(self):
            if self.ended:
                raise AssertionError(f"stream ended before the condition held; got {self.messages!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; got {self.messages!r}, raw tail {self.raw[-300:]!r}")
            self.connection.sock.settimeout(remaining)
            try:
                chunk = self.response.read1(65536)
            except TimeoutError:
                continue
            if not chunk:
                self.ended = True
                continue
            self.raw += chunk
            self.messages.extend(self.parser.feed(chunk))
        return self

    def take(self, count: int, timeout: float = 5) -> list[Message]:
        """Wait for `count` events in total and return them."""
        self.read_until(lambda reader: len(reader.messages) >= count, timeout)
        return self.messages[:count]

    def read_to_end(self, timeout: float = 5) -> StreamReader:
        return self.read_until(lambda reader: reader.ended, timeout)

    def close(self, abrupt: bool = False) -> None:
        sock = self.connection.sock
        if abrupt and sock is not None:
            # SO_LINGER 0: the kernel sends RST, as when a browser tab is killed.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.response.close()


class ResumingSubscriber:
    """Like a browser's EventSource: reads a stream in a greenlet, and whenever it
    ends or fails reconnects after `retry` seconds with its Last-Event-ID."""

    def __init__(self, host: str, port: int, path: str, retry: float = 0.2):
        self.address, self.path, self.retry = (host, port), path, retry
        self.messages: list[Message] = []
        self.last_event_id: str | None = None
        self.connects = 0
        self._stopped = False
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        while not self._stopped:
            headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
            connection = http.client.HTTPConnection(*self.address, timeout=10)
            try:
                connection.request("GET", self.path, headers=headers)
                response = connection.getresponse()
                self.connects += 1
                parser = Parser(self.last_event_id or "")
                while response.status == 200 and (chunk := response.read1(65536)):
                    self.messages.extend(parser.feed(chunk))
                    self.last_event_id = parser.last_event_id or None
            except (OSError, http.client.HTTPException):
                pass  # refused while the hub restarts, or cut mid-response: reconnect
            finally:
                connection.close()
            gevent.sleep(self.retry * random.uniform(0.5, 1.5))

    def stop(self) -> None:
        self._stopped = True
        self._greenlet.kill()
