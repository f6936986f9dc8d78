"""/events in long-poll mode (for the EventSource polyfill) and the history parameter."""

import gevent
import pytest

from ssehub import stream
from ssehub.brokers import BrokerUnavailable, history
from ssehub.brokers.memory import MemoryBroker
from tests.conftest import wait_for


def test_long_poll_sends_padding_retry_and_the_right_headers(live):
    server = live()
    reader = server.stream("channel=news&padding=true")
    reader.read_until(lambda r: r.messages)
    assert reader.raw.startswith(b":" + b" " * 2054 + b"\n\nretry: 1000\n\n")
    assert reader.headers["Cache-Control"] == "no-store, no-cache"
    assert reader.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("marker", ["ssehub_poll=1", "evs_preamble=1", "evs_buffer_size_limit=1000"])
def test_a_poll_without_an_id_gets_a_position_event_the_polyfill_keeps(live, marker):
    server = live()
    reader = server.stream(f"channel=news&{marker}")
    [position] = reader.take(1)
    assert position.type == "ssehub.position" and position.data == ""
    server.publish("news", "first")
    reader.read_to_end()
    assert [m.data for m in reader.messages[1:]] == ["first"]
    assert reader.messages[1].last_event_id != position.last_event_id


def test_a_poll_with_pending_events_answers_them_and_ends_at_once(live):
    server = live()
    ids = [server.publish("news", str(n)) for n in range(3)]
    reader = server.stream(f"channel=news&ssehub_poll=1&lastEventId={ids[0]}").read_to_end(timeout=2)
    assert [m.data for m in reader.messages] == ["1", "2"]
    assert reader.raw.endswith(b"\n\n")


def test_a_poll_sends_at_most_one_page_and_the_next_poll_continues(live):
    server = live()
    start = server.stream("channel=news&ssehub_poll=1").take(1)[0].last_event_id
    for _ in range(6):
        status, _ = server.request("POST", "/publish", [{"channel": "news", "data": str(n)} for n in range(100)])
        assert status == 201
    first = server.stream(f"channel=news&ssehub_poll=1&lastEventId={start}").read_to_end()
    assert len(first.messages) == history.PAGE
    second = server.stream(f"channel=news&ssehub_poll=1&lastEventId={first.messages[-1].last_event_id}")
    assert len(second.read_to_end().messages) == 600 - history.PAGE


def test_an_idle_poll_ends_after_the_hold(live, monkeypatch):
    monkeypatch.setattr(stream, "LONG_POLL_HOLD_SECONDS", 0.3)
    server = live(heartbeat_seconds=0.1)
    reader = server.stream("channel=news&ssehub_poll=1")
    reader.read_to_end(timeout=3)
    assert [m.type for m in reader.messages] == ["ssehub.position"]
    assert reader.parser.comments.count("") >= 1  # heartbeats while holding


def test_polling_like_the_polyfill_gets_every_event_once_in_order(live, monkeypatch):
    """No server state between polls: each poll's id is the only truth."""
    monkeypatch.setattr(stream, "LONG_POLL_HOLD_SECONDS", 0.5)
    server = live()
    last_id = server.publish("news", "before the first poll")
    published, received = [], []

    def publish_in_bursts():
        for burst in range(10):
            for n in range(10):
                published.append((server.publish("news", f"{burst}.{n}"), f"{burst}.{n}"))
            gevent.sleep(0.05 * (burst % 3))

    def poll():
        """One poll as the polyfill makes it; each ends, and the next resumes from its last id."""
        nonlocal last_id
        reader = server.stream(f"channel=news&ssehub_poll=1&lastEventId={last_id}").read_to_end(timeout=5)
        received.extend((m.last_event_id, m.data) for m in reader.messages)
        last_id = reader.parser.last_event_id or last_id
        return len(received) >= 100

    publisher = gevent.spawn(publish_in_bursts)
    wait_for(poll, timeout=60, interval=0, message="100 events over the polls")
    publisher.get()
    assert received == published  # every event, each once, in order, with its own id


def test_history_sends_the_last_events_then_live_and_a_resume_continues(live):
    server = live()
    for n in range(5):
        server.publish("chat", str(n))
    reader = server.stream("channel=chat&history=3")
    assert [m.data for m in reader.take(3)] == ["2", "3", "4"]
    server.publish("chat", "live")
    assert reader.take(4)[-1].data == "live"
    resumed = server.stream("channel=chat&history=3", {"Last-Event-ID": reader.messages[1].last_event_id})
    assert [m.data for m in resumed.take(2)] == ["4", "live"]


def test_history_over_several_channels_is_merged_in_order(live):
    server = live()
    for n in range(4):
        server.publish("a" if n % 2 else "b", str(n))
    reader = server.stream("channel=a&channel=b&history=10")
    assert [m.data for m in reader.take(4)] == ["0", "1", "2", "3"]


@pytest.mark.parametrize("value", ["-1", "x", "101", "%C2%B2", "1e2", ""])
def test_a_bad_history_value_is_400(testapp, value):
    assert "history must be" in testapp.get(f"/events?channel=a&history={value}", status=400).json["error"]


def test_a_broker_outage_on_events_is_200_with_retry_never_an_error_status(live):
    class Down(MemoryBroker):
        def head(self, channel):
            raise BrokerUnavailable("connection refused")

    server = live(broker=Down(history_size=10))
    for query in ["channel=news", "channel=news&ssehub_poll=1"]:
        reader = server.stream(query).read_to_end()
        assert reader.status == 200 and reader.parser.retry is not None
        assert "connection refused" in reader.parser.comments[-1]
    wait_for(lambda: server.app.hub.subscriber_count == 0)
