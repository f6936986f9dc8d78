"""The fan-out path of issue 12: publishes answered before their fan-out, events
written straight to ready sockets and queued for blocked ones, and reads that
a connect storm shares instead of repeating."""

import collections

import gevent
import gevent.event
import pytest
import webtest

from ssehub.brokers import Replay
from ssehub.brokers.memory import MemoryBroker
from ssehub.cursor import format_id, parse_id
from ssehub.hub import Hub
from tests.conftest import wait_for
from tests.sse import StreamReader


def test_a_publish_is_answered_before_its_fan_out_to_a_thousand_subscribers(make_app):
    app = make_app()
    client = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    subscriptions = [app.hub.subscribe(["news"]) for _ in range(1000)]
    reply = client.post_json("/publish", {"channel": "news", "data": "hello"}, status=201).json
    assert app.hub.delivered == 0  # answered; the fan-out has not begun
    wait_for(lambda: app.hub.delivered == 1000, message="the fan-out")
    for subscription in subscriptions:
        assert [event.id for event in subscription.wait(timeout=1)] == [parse_id(reply["id"])]


@pytest.mark.parametrize("broker", ["memory", "redis"])
def test_every_event_reaches_every_subscriber_once_in_order_when_some_sockets_block(
    live, request, writes, small_send_buffers, broker
):
    settings = {"client_queue": 1000, "max_streams_per_client": 0}
    if broker == "redis":
        settings["redis_url"] = request.getfixturevalue("clean_redis").url
    server = live(**settings)
    ready = [server.stream("channel=news") for _ in range(4)]
    blocked = [StreamReader("127.0.0.1", server.port, "/events?channel=news", small_window=True) for _ in range(4)]
    for reader in ready + blocked:
        reader.read_until(lambda r: r.parser.last_event_id)
    payload = "x" * 8000
    ids = []
    for n in range(120):
        ids.append(server.publish("news", f"{n} {payload}"))
        for reader in ready:  # these keep up; the blocked ones read nothing yet
            reader.take(n + 1)
    for reader in ready + blocked:
        received = reader.take(120, timeout=20)
        assert [(m.data.split()[0], m.last_event_id) for m in received] == [(str(n), ids[n]) for n in range(120)]
        assert len(reader.messages) == 120
    assert writes["direct"] > 0 and writes["drained"] > 0, writes
    assert server.app.hub.evictions == 0


class CountingBroker(MemoryBroker):
    def __init__(self):
        super().__init__(history_size=100)
        self.calls = collections.Counter()
        self.replay_gate = gevent.event.Event()
        self.replay_gate.set()

    def head(self, channel):
        self.calls["head"] += 1
        return super().head(channel)

    def replay(self, channel, after, limit):
        self.calls["replay"] += 1
        self.replay_gate.wait()
        return super().replay(channel, after, limit)


def test_a_listened_channel_answers_heads_and_up_to_date_resumes_from_memory():
    broker = CountingBroker()
    hub = Hub(broker, queue_size=10)
    first = hub.subscribe(["news"])
    published = broker.publish("news", "one")
    wait_for(lambda: first.queue, message="the event handed over")
    calls = broker.calls.copy()
    assert hub.head("news") == published
    assert hub.replay("news", published, 500) == Replay([], exact=True, start=published)
    assert broker.calls == calls  # neither needed the broker
    older = hub.replay("news", (0, 0), 500)
    assert [event.id for event in older.events] == [published] and broker.calls["replay"] == calls["replay"] + 1


def test_identical_replays_in_flight_share_one_broker_call_even_if_the_first_caller_leaves():
    broker = CountingBroker()
    hub = Hub(broker, queue_size=10)
    hub.subscribe(["news"])
    start = broker.head("news")
    broker.publish("news", "missed")
    broker.replay_gate.clear()
    readers = [gevent.spawn(hub.replay, "news", start, 500) for _ in range(50)]
    gevent.sleep(0)
    readers[0].kill()  # the asking client hung up; one of the others asks instead
    gevent.sleep(0)
    broker.replay_gate.set()
    answers = [reader.get(timeout=2) for reader in readers[1:]]
    assert all([event.data for event in answer.events] == ["missed"] for answer in answers)
    assert broker.calls["replay"] == 2  # the killed call, then one for all 49


class InterruptedReplayBroker(MemoryBroker):
    """Runs `during` once, in the middle of a stream's catching up."""

    def __init__(self, during):
        super().__init__(history_size=100)
        self._during = during

    def replay(self, channel, after, limit):
        during, self._during = self._during, None
        if during is not None:
            during(self, channel)
            gevent.sleep(0)  # the fan-out runs while the stream is still catching up
        return super().replay(channel, after, limit)


def test_a_stream_evicted_while_it_caught_up_ends_and_says_so(live):
    # Regression: evicted before its connection was handed over, it stayed open and got nothing.
    def flood(broker, channel):
        for n in range(5):
            broker.publish(channel, f"flood {n}")

    broker = InterruptedReplayBroker(flood)
    server = live(broker=broker, client_queue=2)
    start = format_id(broker.head("news"))
    broker.publish("news", "before")
    reader = server.stream("channel=news", {"Last-Event-ID": start}).read_to_end()
    assert " too slow to keep up; resume from your last id" in reader.parser.comments


def test_a_stream_ended_while_it_caught_up_ends(live):
    # Regression: ended (history lost) before its connection was handed over, it lived on.
    broker = InterruptedReplayBroker(lambda broker, channel: server.app.hub.end_streams(channel))
    server = live(broker=broker)
    start = format_id(broker.head("news"))
    broker.publish("news", "before")
    reader = server.stream("channel=news", {"Last-Event-ID": start}).read_to_end()
    assert [m.data for m in reader.messages] == ["before"]


def test_a_client_that_hangs_up_is_let_go_at_once_not_at_the_next_heartbeat(live):
    server = live(heartbeat_seconds=60, max_streams_per_client=0)
    readers = [server.stream("channel=news") for _ in range(20)]
    for reader in readers:
        reader.read_until(lambda r: r.parser.last_event_id)
    assert server.app.hub.subscriber_count == 20
    for n, reader in enumerate(readers):
        reader.close(abrupt=n % 2 == 0)  # half with a reset, half with a FIN
    wait_for(lambda: server.app.hub.subscriber_count == 0, timeout=5, message="the streams released")
    assert server.app.limits.open == 0 and server.app.hub.channel_count == 0
