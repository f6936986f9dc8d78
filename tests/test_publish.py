"""POST /publish and the small endpoints, through WebTest (their responses end)."""

import json

import pytest
import webtest

from ssehub.cursor import parse_id


def history(app, channel):
    return [(e.data, e.type) for e in app.app.broker.replay(channel, None, 1000).events]


def test_publish_json_returns_201_with_an_id_and_stores_the_event(testapp):
    reply = testapp.post_json("/publish", {"channel": "news", "data": "hello", "event": "greet"}, status=201)
    assert reply.json["channel"] == "news" and parse_id(reply.json["id"])
    assert history(testapp, "news") == [("hello", "greet")]


@pytest.mark.parametrize(
    "data, sent",
    [
        ({"a": [1, 2]}, '{"a":[1,2]}'),
        (3.5, "3.5"),
        (None, "null"),
        (True, "true"),
        ("ünï", "ünï"),
        ({"k": "é"}, '{"k":"é"}'),
    ],
)
def test_non_string_data_is_sent_as_compact_json(testapp, data, sent):
    testapp.post_json("/publish", {"channel": "news", "data": data}, status=201)
    assert history(testapp, "news") == [(sent, None)]


def test_publish_form_fields(testapp):
    testapp.post("/publish", {"channel": "news", "data": "from a form", "event": "note"}, status=201)
    testapp.post("/publish", {"channel": "news", "data": "multipart"}, content_type="multipart/form-data", status=201)
    assert history(testapp, "news") == [("from a form", "note"), ("multipart", None)]


def test_publish_a_json_array_returns_an_id_per_event_in_order(testapp):
    reply = testapp.post_json(
        "/publish",
        [{"channel": "a", "data": "1"}, {"channel": "b", "data": "2"}, {"channel": "a", "data": "3"}],
        status=201,
    )
    assert [r["channel"] for r in reply.json] == ["a", "b", "a"]
    assert parse_id(reply.json[0]["id"]) < parse_id(reply.json[2]["id"])
    assert history(testapp, "a") == [("1", None), ("3", None)]


def test_a_one_element_array_still_gets_an_array_back(testapp):
    reply = testapp.post_json("/publish", [{"channel": "a", "data": "1"}], status=201)
    assert isinstance(reply.json, list) and len(reply.json) == 1


def test_a_bad_event_in_an_array_publishes_none_of_them(testapp):
    reply = testapp.post_json("/publish", [{"channel": "a", "data": "1"}, {"channel": "a"}], status=400)
    assert reply.json["error"] == "event 1: data is required (a string or any JSON value)"
    assert history(testapp, "a") == []


BAD_JSON_BODIES = [
    ({"data": "x"}, 400, "channel is required"),
    ({"channel": "bad name", "data": "x"}, 400, "invalid channel name 'bad name'"),
    ({"channel": "x" * 129, "data": "x"}, 400, "invalid channel name"),
    ({"channel": 7, "data": "x"}, 400, "invalid channel name 7"),
    ({"channel": "news"}, 400, "data is required"),
    ({"channel": "news", "data": "x", "event": "a\nb"}, 400, "event must not contain a carriage return"),
    ({"channel": "news", "data": "x", "event": "a\rb"}, 400, "event must not contain a carriage return"),
    ({"channel": "news", "data": "x", "event": "a\0b"}, 400, "event must not contain a carriage return"),
    ({"channel": "news", "data": "x", "event": ""}, 400, "event must be a string of 1-256"),
    ({"channel": "news", "data": "x", "event": 5}, 400, "event must be a string"),
    ({"channel": "news", "data": "x", "event": "e" * 257}, 400, "event must be a string of 1-256"),
    ({"channel": "news", "data": "x", "event": "ssehub.reset"}, 400, "reserved for the hub"),
    ({"channel": "news", "data": "x", "id": "5-0"}, 400, "unknown field 'id'"),
    ("just a string", 400, "each event must be a JSON object"),
    ([], 400, "the JSON array is empty"),
    ([{"channel": "a", "data": "x"}] * 101, 413, "at most 100 events per request"),
]


@pytest.mark.parametrize("body, status, message", BAD_JSON_BODIES)
def test_bad_publish_bodies_get_a_4xx_json_error_saying_what_to_fix(testapp, body, status, message):
    reply = testapp.post_json("/publish", body, status=status)
    assert reply.content_type == "application/json"
    assert message in reply.json["error"]


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"channel": "news", ', "the body is not valid JSON"),
        (b"\xff\xfe", "the body is not valid JSON"),
        (b'{"channel": "news", "data": "\\ud800"}', "data is not valid Unicode text"),
        (b'{"channel": "news", "data": "x", "event": "\\udfff"}', "event is not valid Unicode text"),
        (b"", "the body is not valid JSON"),
    ],
)
def test_malformed_json_and_lone_surrogates_are_400_not_500(testapp, raw, message):
    reply = testapp.post("/publish", raw, content_type="application/json", status=400)
    assert message in reply.json["error"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", ""])
def test_other_content_types_are_415(testapp, content_type):
    reply = testapp.post("/publish", b"channel=news&data=x", content_type=content_type, status=415)
    assert "application/json" in reply.json["error"]


def test_data_over_max_event_bytes_is_413_and_counts_utf8_bytes(make_app):
    app = webtest.TestApp(make_app(max_event_bytes=10), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    app.post_json("/publish", {"channel": "news", "data": "x" * 10}, status=201)
    reply = app.post_json("/publish", {"channel": "news", "data": "é" * 6}, status=413)
    assert reply.json["error"] == "data is 12 bytes; the limit is MAX_EVENT_BYTES=10"


def test_a_body_over_the_request_limit_is_413_json(make_app):
    app = webtest.TestApp(make_app(max_event_bytes=10), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    reply = app.post("/publish", b"x" * 70_000, content_type="application/json", status=413)
    assert reply.json["error"]


def test_with_a_token_the_bearer_header_is_required_and_checked(make_app):
    app = webtest.TestApp(make_app(publish_token="s3cret"), extra_environ={"REMOTE_ADDR": "203.0.113.9"})
    body = {"channel": "news", "data": "x"}
    missing = app.post_json("/publish", body, status=401)
    assert "Authorization: Bearer" in missing.json["error"]
    assert missing.headers["WWW-Authenticate"].lower().startswith("bearer")
    app.post_json("/publish", body, headers={"Authorization": "Bearer wrong"}, status=401)
    app.post_json("/publish", body, headers={"Authorization": "Basic s3cret"}, status=401)
    app.post_json("/publish", body, headers={"Authorization": "Bearer s3cret"}, status=201)


def test_auth_is_checked_before_the_body_is_read(make_app):
    app = webtest.TestApp(make_app(publish_token="s3cret"))
    app.post("/publish", b"not json", content_type="application/json", status=401)


@pytest.mark.parametrize("address, status", [("127.0.0.1", 201), ("::1", 201), ("10.1.2.3", 403), ("203.0.113.9", 403)])
def test_without_a_token_only_loopback_clients_may_publish(make_app, address, status):
    app = webtest.TestApp(make_app(), extra_environ={"REMOTE_ADDR": address})
    reply = app.post_json("/publish", {"channel": "news", "data": "x"}, status=status)
    if status == 403:
        assert "PUBLISH_TOKEN" in reply.json["error"]


def test_wrong_method_and_unknown_path_are_json(testapp):
    reply = testapp.get("/publish", status=405)
    assert reply.json == {"error": "use POST on /publish"}
    assert "POST" in reply.headers["Allow"]
    assert testapp.get("/nope", status=404).json == {"error": "no such endpoint: /nope"}
    assert testapp.post("/events", status=405).json["error"].startswith("use GET")


def test_healthz_and_readyz(testapp):
    assert testapp.get("/healthz").json == {"status": "ok"}
    assert testapp.get("/readyz").json["status"] == "ready"


def test_readyz_is_503_with_the_reason_when_the_broker_is_unreachable(make_app):
    from ssehub.brokers import BrokerUnavailable
    from ssehub.brokers.memory import MemoryBroker

    class Down(MemoryBroker):
        def check(self):
            raise BrokerUnavailable("connection refused")

    app = webtest.TestApp(make_app(broker=Down(history_size=10)))
    assert app.get("/readyz", status=503).json == {"error": "broker unavailable: connection refused"}


def test_a_broker_failure_mid_batch_is_503_and_names_what_was_published(make_app):
    from ssehub.brokers import BrokerUnavailable
    from ssehub.brokers.memory import MemoryBroker

    class FailsSecond(MemoryBroker):
        calls = 0

        def publish(self, *args):
            self.calls += 1
            if self.calls == 2:
                raise BrokerUnavailable("connection lost")
            return super().publish(*args)

    app = webtest.TestApp(make_app(broker=FailsSecond(history_size=10)), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    reply = app.post_json("/publish", [{"channel": "a", "data": "1"}, {"channel": "a", "data": "2"}], status=503)
    assert reply.json["error"] == "broker unavailable: connection lost"
    assert [p["channel"] for p in reply.json["published"]] == ["a"]


def test_bad_channel_on_events_is_400_before_any_stream(testapp):
    assert "invalid channel name" in testapp.get("/events?channel=a%0Ab", status=400).json["error"]
    assert testapp.get("/events", status=400).json["error"].startswith("channel is required")
    many = "&".join(f"channel=c{n}" for n in range(33))
    assert "at most 32 channels" in testapp.get(f"/events?{many}", status=400).json["error"]


def test_disallowed_origin_on_events_is_403(make_app):
    app = webtest.TestApp(make_app(allowed_origins=("https://ok.example",)))
    reply = app.get("/events?channel=news", headers={"Origin": "https://evil.example"}, status=403)
    assert "ALLOWED_ORIGINS" in reply.json["error"]


def test_preflight_allows_last_event_id_for_allowed_origins(make_app):
    app = webtest.TestApp(make_app(allowed_origins=("https://ok.example",)))
    reply = app.options(
        "/events?channel=news",
        headers={"Origin": "https://ok.example", "Access-Control-Request-Headers": "last-event-id"},
        status=204,
    )
    assert reply.headers["Access-Control-Allow-Origin"] == "https://ok.example"
    assert "Last-Event-ID" in reply.headers["Access-Control-Allow-Headers"]


def test_error_bodies_never_echo_markup_as_html(testapp):
    reply = testapp.get("/events?channel=%3Cscript%3E", status=400)
    assert reply.content_type == "application/json"
    json.loads(reply.body)
