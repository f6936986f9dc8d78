import pytest

from ssehub.cursor import format_cursor, format_id, parse_cursor, parse_id


def test_ids_round_trip_and_order_numerically():
    assert parse_id("1700000000000-12") == (1700000000000, 12)
    assert format_id((5, 0)) == "5-0"
    assert parse_id("9-0") < parse_id("10-0")


@pytest.mark.parametrize("bad", ["", "abc", "1", "1-", "-1", "1-2-3", " 1-2", "1-2\n", "1" * 21 + "-0"])
def test_malformed_ids_are_rejected(bad):
    assert parse_id(bad) is None


def test_no_cursor_means_start_from_now():
    assert parse_cursor(None, ["a"]) is None


def test_a_bare_id_resumes_a_single_channel():
    assert parse_cursor("5-1", ["news"]) == {"news": (5, 1)}


def test_a_bare_id_cannot_resume_several_channels():
    assert parse_cursor("5-1", ["a", "b"]) == {"a": None, "b": None}


def test_a_vector_resumes_every_channel_it_names_and_only_those():
    cursor = parse_cursor("a=1-0,b=2-0,gone=3-0", ["b", "a", "c"])
    assert cursor == {"b": (2, 0), "a": (1, 0), "c": None}


def test_format_cursor_puts_the_event_channel_first():
    positions = {"a": (1, 0), "b:x@y": (2, 3)}
    assert format_cursor(positions, "b:x@y") == "b:x@y=2-3,a=1-0"
    assert parse_cursor(format_cursor(positions, "b:x@y"), ["a", "b:x@y"]) == positions
    assert format_cursor({"a": (1, 0)}, "a") == "1-0"


def test_an_id_beyond_what_redis_can_hold_is_not_ours():
    # Regression: Redis refused to range from it, so the stream ended and the
    # browser resumed with it forever instead of getting a reset.
    assert parse_id("1-18446744073709551615") == (1, 2**64 - 1)
    assert parse_id("1-18446744073709551616") is None
    assert parse_id("18446744073709551616-0") is None
