"""GET /events read live from a gevent server, as a browser's EventSource would."""

import json
import socket

import webtest

from ssehub.cursor import parse_cursor


def test_headers_and_first_bytes_arrive_before_any_event(live):
    server = live()
    reader = server.stream("channel=news")
    assert reader.status == 200
    assert reader.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert reader.headers["Cache-Control"] == "no-cache"
    assert reader.headers["X-Accel-Buffering"] == "no"
    reader.read_until(lambda r: r.parser.retry is not None and r.parser.last_event_id)
    assert reader.raw.startswith(b"retry: 100\n\n: ssehub\n\n")
    assert reader.messages == []


def test_idle_streams_get_heartbeat_comments(live):
    reader = live(heartbeat_seconds=0.02).stream("channel=news")
    reader.read_until(lambda r: r.parser.comments.count("") >= 3)


def test_published_events_arrive_in_order_with_type_and_exact_data(live):
    server = live()
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    sent = ["plain", "", "two\nlines", "trailing\n", ":colon", " space", "line\u2028sep", "emoji 🎉"]
    ids = [server.publish("news", data, event="note" if n % 2 else None) for n, data in enumerate(sent)]
    messages = reader.take(len(sent))
    assert [m.data for m in messages] == sent
    assert [m.type for m in messages] == ["note" if n % 2 else "message" for n in range(len(sent))]
    assert [m.last_event_id for m in messages] == ids


def test_a_client_without_an_id_learns_a_current_one_at_once(live):
    server = live()
    server.publish("news", "old")
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    assert reader.messages == []
    server.publish("news", "missed while away")
    reader.close()
    resumed = server.stream("channel=news", {"Last-Event-ID": reader.parser.last_event_id})
    assert [m.data for m in resumed.take(1)] == ["missed while away"]


def test_one_stream_carries_several_channels_and_each_event_names_its_channel(live):
    server = live()
    reader = server.stream("channel=sport&channel=news&channel=sport")
    reader.read_until(lambda r: r.parser.last_event_id)
    server.publish("news", "n1")
    server.publish("sport", "s1")
    server.publish("other", "not subscribed")
    server.publish("news", "n2")
    messages = reader.take(3)
    assert [m.data for m in messages] == ["n1", "s1", "n2"]
    # Documented: the channel is the part of lastEventId before the first "=".
    assert [m.last_event_id.split("=")[0] for m in messages] == ["news", "sport", "news"]


def test_resume_after_last_event_id_replays_only_newer_then_continues_live(live):
    server = live()
    ids = [server.publish("news", str(n)) for n in range(5)]
    reader = server.stream("channel=news", {"Last-Event-ID": ids[1]})
    assert [m.data for m in reader.take(3)] == ["2", "3", "4"]
    server.publish("news", "live")
    assert [m.data for m in reader.take(4)] == ["2", "3", "4", "live"]


def test_last_event_id_query_parameters_and_the_header_wins(live):
    server = live()
    ids = [server.publish("news", str(n)) for n in range(4)]
    by_query = server.stream(f"channel=news&lastEventId={ids[2]}")
    assert [m.data for m in by_query.take(1)] == ["3"]
    by_evs = server.stream(f"channel=news&evs_last_event_id={ids[1]}")
    assert [m.data for m in by_evs.take(2)] == ["2", "3"]
    header_wins = server.stream(f"channel=news&lastEventId={ids[0]}", {"Last-Event-ID": ids[2]})
    assert [m.data for m in header_wins.take(1)] == ["3"]


def test_one_id_resumes_every_channel_of_a_multi_channel_stream_exactly(live):
    server = live()
    query = "channel=a&channel=b"
    first = server.stream(query)
    first.read_until(lambda r: r.parser.last_event_id)
    server.publish("a", "a1")
    server.publish("b", "b1")
    first.take(2)
    first.close()
    for data in ["a2", "b2", "a3"]:
        server.publish(data[0], data)
    second = server.stream(query, {"Last-Event-ID": first.parser.last_event_id})
    assert [m.data for m in second.take(3)] == ["a2", "b2", "a3"]
    server.publish("b", "b3")
    assert [m.data for m in second.take(4)] == ["a2", "b2", "a3", "b3"]
    cursor = parse_cursor(second.messages[-1].last_event_id, ["a", "b"])
    assert None not in cursor.values()


def _reset_channels(messages):
    return [json.loads(m.data)["channel"] for m in messages if m.type == "ssehub.reset"]


def test_an_id_older_than_history_gets_a_reset_event_then_what_is_left(live):
    server = live(history_size=3)
    ids = [server.publish("news", str(n)) for n in range(6)]
    reader = server.stream("channel=news", {"Last-Event-ID": ids[0]})
    messages = reader.take(4)
    assert messages[0].type == "ssehub.reset" and _reset_channels(messages) == ["news"]
    assert [m.data for m in messages[1:]] == ["3", "4", "5"]


def test_a_malformed_id_gets_a_reset_and_the_reset_id_resumes_cleanly(live):
    server = live()
    server.publish("news", "kept")
    reader = server.stream("channel=news", {"Last-Event-ID": "garbage\u00e9"})
    reset, kept = reader.take(2)
    assert reset.type == "ssehub.reset" and kept.data == "kept"
    # The reset carries an id, so a client that drops right after it is not reset again.
    again = server.stream("channel=news", {"Last-Event-ID": reset.last_event_id})
    assert [m.data for m in again.take(1)] == ["kept"]


def test_a_multi_channel_cursor_missing_a_channel_resets_only_that_channel(live):
    server = live()
    a_id = server.publish("a", "a1")
    server.publish("b", "b1")
    server.publish("a", "a2")
    reader = server.stream("channel=a&channel=b", {"Last-Event-ID": f"a={a_id}"})
    messages = reader.take(3)
    assert _reset_channels(messages) == ["b"]
    assert [m.data for m in messages[1:]] == ["b1", "a2"]


def test_cross_origin_streams_from_allowed_origins_carry_cors_headers(live):
    server = live(allowed_origins=("https://ok.example",))
    reader = server.stream("channel=news", {"Origin": "https://ok.example"})
    assert reader.headers["Access-Control-Allow-Origin"] == "https://ok.example"


def test_raw_non_utf8_bytes_in_the_url_are_400_not_500(live):
    # Regression: Werkzeug raised UnicodeDecodeError reading request.args.
    server = live()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /events?channel=a&history=\xb2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400")
    assert b'{"error": "the URL is not valid UTF-8; percent-encode it"}' in reply


def test_wrap_sends_every_event_unnamed_with_its_type_in_the_data(make_app):
    app = make_app()
    greet = app.broker.publish("news", "hello\nworld", "greet")
    plain = app.broker.publish("news", "plain")
    body = webtest.TestApp(app).get("/events?channel=news&history=2&wrap=1&ssehub_poll=1").body
    assert body.endswith(
        b"id: %d-%d\n" % greet
        + b'data: {"event": "greet", "data": "hello\\nworld"}\n\n'
        + b"id: %d-%d\n" % plain
        + b'data: {"event": "message", "data": "plain"}\n\n'
    )


def test_without_wrap_the_wire_format_is_unchanged(make_app):
    app = make_app()
    greet = app.broker.publish("news", "hi", "greet")
    body = webtest.TestApp(app).get("/events?channel=news&history=1&ssehub_poll=1").body
    assert body.endswith(b"id: %d-%d\nevent: greet\ndata: hi\n\n" % greet)
