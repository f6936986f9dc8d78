import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssehub import wire
from tests.sse import Parser, parse

# The wire's domain is Unicode text: what UTF-8 encodes, so no lone surrogates.
unicode_text = st.text(st.characters(codec="utf-8"))
event_types = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\0"), min_size=1)
# Any str at all, and one that is certain to hold a lone surrogate.
any_str = st.text(st.characters())
with_a_lone_surrogate = st.tuples(any_str, st.characters(categories=["Cs"]), any_str).map("".join)
ENCODERS = {
    "data": wire.encode_event,
    "event": lambda text: wire.encode_event("x", event=text),
    "id": lambda text: wire.encode_event("x", event_id=text),
    "comment": wire.comment,
}


@pytest.mark.parametrize(
    "data, event, event_id, expected",
    [
        ("hello", None, None, b"data: hello\n\n"),
        ("", None, None, b"data: \n\n"),
        ("a\nb", None, None, b"data: a\ndata: b\n\n"),
        ("a\r\nb\rc", None, None, b"data: a\ndata: b\ndata: c\n\n"),
        ("trailing\n", None, None, b"data: trailing\ndata: \n\n"),
        (":not a comment", None, None, b"data: :not a comment\n\n"),
        (" leading space", None, None, b"data:  leading space\n\n"),
        ("line\u2028separator\x85next", None, None, "data: line\u2028separator\x85next\n\n".encode()),
        ("x", "update", "0", b"id: 0\nevent: update\ndata: x\n\n"),
        ("x", None, "", b"id: \ndata: x\n\n"),
    ],
)
def test_encode_event_writes_exact_bytes(data, event, event_id, expected):
    assert wire.encode_event(data, event, event_id) == expected


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b", "\n"])
def test_event_type_and_id_with_line_breaks_or_nul_are_refused(bad):
    with pytest.raises(ValueError, match="must not contain"):
        wire.encode_event("x", event=bad)
    with pytest.raises(ValueError, match="must not contain"):
        wire.encode_event("x", event_id=bad)


@pytest.mark.parametrize(
    "field, text, found",
    [
        ("data", "ok\n\ud800", r"'\ud800' at index 3"),
        ("event", "up\udfffdate", r"'\udfff' at index 2"),
        ("id", "\ud83d\ude00", r"'\ud83d' at index 0"),
        ("comment", "a\r\n\udc80", r"'\udc80' at index 3"),
    ],
)
def test_a_lone_surrogate_is_refused_naming_the_field_and_where(field, text, found):
    with pytest.raises(ValueError) as refused:
        ENCODERS[field](text)
    assert type(refused.value) is ValueError  # not the UnicodeEncodeError of str.encode()
    assert (
        str(refused.value)
        == f"{field} is not valid Unicode text: it has a lone surrogate, {found}; remove or replace it"
    )


@pytest.mark.parametrize("field", ENCODERS)
@given(text=with_a_lone_surrogate)
def test_any_string_with_a_lone_surrogate_is_refused(field, text):
    # With a line break or NUL as well, an event type or id is refused for that first.
    with pytest.raises(ValueError, match=f"^{field} (is not valid Unicode text|must not contain)") as refused:
        ENCODERS[field](text)
    assert type(refused.value) is ValueError


def test_comment_retry_heartbeat_and_id_only_bytes():
    assert wire.comment("hi") == b": hi\n\n"
    assert wire.comment("a\nb") == b": a\n: b\n\n"
    assert wire.retry(1500) == b"retry: 1500\n\n"
    assert wire.HEARTBEAT == b":\n\n"
    assert wire.id_only("7-1") == b"id: 7-1\n\n"


def test_id_only_block_moves_last_event_id_without_firing_an_event():
    parser = Parser()
    assert parser.feed(wire.id_only("5-0")) == []
    assert parser.last_event_id == "5-0"


def _as_parsed(data: str) -> str:
    # SSE has no way to carry CR: a parser turns CRLF and CR into LF.
    return re.sub(r"\r\n|\r", "\n", data)


@given(unicode_text)
def test_any_string_comes_back_from_a_spec_parser(data):
    [message] = parse(wire.encode_event(data))
    assert message.data == _as_parsed(data)


@given(st.text(st.characters(codec="utf-8", exclude_characters="\r")))
def test_strings_without_carriage_returns_come_back_byte_for_byte(data):
    [message] = parse(wire.encode_event(data))
    assert message.data.encode() == data.encode()


@given(
    st.lists(
        st.tuples(unicode_text, st.none() | event_types),
        min_size=1,
        max_size=5,
    ),
    st.integers(min_value=1, max_value=7),
)
def test_consecutive_events_split_anywhere_parse_back_in_order(events, cut):
    stream = b"".join(wire.encode_event(data, event, f"{n}-0") for n, (data, event) in enumerate(events))
    parser = Parser()
    messages = []
    for start in range(0, len(stream), cut):
        messages.extend(parser.feed(stream[start : start + cut]))
    assert [(m.data, m.type, m.last_event_id) for m in messages] == [
        (_as_parsed(data), event or "message", f"{n}-0") for n, (data, event) in enumerate(events)
    ]
