"""The Server-Sent Events wire format: pure functions from values to bytes.

Follows the WHATWG HTML "server-sent events" parsing rules; no I/O here. The
hub encodes each event once with these and fans the bytes out.
Text is written as UTF-8, so a string with a lone surrogate raises ValueError.
"""

from __future__ import annotations

import re

# The SSE parser ends a line at CRLF, CR or LF and nowhere else; str.splitlines()
# would also split on U+2028, U+0085, form feed and more, corrupting data.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FORBIDDEN_IN_FIELD = re.compile(r"[\r\n\0]")
# The only code points UTF-8 cannot encode; JSON's "\ud800" escape can still carry one.
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_field(name: str, value: str) -> None:
    """Refuse an `id` or `event` value that could end its line and inject fields (CWE-93)."""
    if _FORBIDDEN_IN_FIELD.search(value):
        raise ValueError(f"{name} must not contain a carriage return, line feed or NUL")


def data_lines(data: str) -> bytes:
    """Encode `data` as `data:` lines; a parser joins them back with LF.

    The space after the colon is always written, because a parser strips
    exactly one leading space and the data's own may follow it.
    """
    return _lines("data", b"data: ", data)


def event_body(data: str, event: str | None = None) -> bytes:
    """Everything of one event except its `id:` line, ending with the blank line."""
    head = b""
    if event is not None:
        check_field("event", event)
        head = b"event: " + _utf8("event", event) + b"\n"
    return head + data_lines(data) + b"\n"


def id_line(event_id: str) -> bytes:
    """The `id:` line; written before the body so a parser sees one event."""
    check_field("id", event_id)
    return b"id: " + _utf8("id", event_id) + b"\n"


def encode_event(data: str, event: str | None = None, event_id: str | None = None) -> bytes:
    """One complete event; `event_id=None` omits the field, "" resets it."""
    prefix = id_line(event_id) if event_id is not None else b""
    return prefix + event_body(data, event)


def id_only(event_id: str) -> bytes:
    """An id with no data: moves the client's Last-Event-ID but fires no event."""
    return id_line(event_id) + b"\n"


def retry(milliseconds: int) -> bytes:
    """Tell the client how long to wait before reconnecting."""
    return b"retry: %d\n\n" % int(milliseconds)


def comment(text: str = "") -> bytes:
    """A comment block: keeps the connection warm and is ignored by parsers."""
    return _lines("comment", b": ", text) + b"\n"


def padding(size: int) -> bytes:
    """A comment of exactly `size` bytes (at least 3): old IE and proxies
    buffer the first 2 KB of a response before showing any of it."""
    return b":" + b" " * (size - 3) + b"\n\n"


HEARTBEAT = b":\n\n"


def chunk(data: bytes) -> bytes:
    """`data` framed as one HTTP/1.1 chunk (Transfer-Encoding: chunked), for
    bytes written to a response's socket without the server's help."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def _lines(name: str, prefix: bytes, text: str) -> bytes:
    """`text` as lines that each start with `prefix`, split where a parser splits."""
    try:
        return b"".join(prefix + line.encode() + b"\n" for line in _LINE_BREAK.split(text))
    except UnicodeEncodeError:
        raise _not_unicode(name, text) from None


def _utf8(name: str, text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise _not_unicode(name, text) from None


def _not_unicode(name: str, text: str) -> ValueError:
    surrogate = _SURROGATE.search(text)
    at = surrogate.start() if surrogate else 0
    return ValueError(
        f"{name} is not valid Unicode text: it has a lone surrogate, {text[at]!r} at index {at}; remove or replace it"
    )
