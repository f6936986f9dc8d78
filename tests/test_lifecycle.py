"""What a stream leaves behind: nothing after it goes, and no lag for others while it lives."""

import gc
import os

import gevent
import greenlet

from ssehub import event as event_module
from ssehub.brokers.memory import MemoryBroker
from ssehub.cursor import format_id
from ssehub.hub import Hub
from ssehub.stream import StreamOptions, event_stream
from tests.conftest import wait_for
from tests.sse import Parser, StreamReader


def live_greenlets():
    return sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and not o.dead)


def open_files():
    return len(os.listdir("/proc/self/fd"))


def test_a_thousand_connects_and_disconnects_leave_nothing_behind(live):
    server = live(heartbeat_seconds=0.02)
    hub = server.app.hub

    def visit(n):
        reader = StreamReader("127.0.0.1", server.port, f"/events?channel=news&channel=c{n % 7}")
        reader.read_until(lambda r: r.parser.last_event_id)
        reader.close(abrupt=n % 2 == 0)

    visit(0)  # warm up lazily created objects before counting
    wait_for(lambda: hub.subscriber_count == 0, message="warm-up stream to end")
    baseline = (live_greenlets(), open_files())
    for batch in range(20):
        gevent.joinall([gevent.spawn(visit, batch * 50 + n) for n in range(50)], raise_error=True)
    wait_for(lambda: hub.subscriber_count == 0 and hub.channel_count == 0, message="subscribers to go")
    wait_for(lambda: len(server.handlers) == 0, message="handler greenlets to finish")
    wait_for(lambda: (live_greenlets(), open_files()) <= baseline, message=f"back to {baseline}")


def test_a_slow_subscriber_is_dropped_and_resumes_exactly_while_others_keep_up(live):
    server = live(client_queue=5)
    fast = server.stream("channel=news")
    slow = server.stream("channel=news")
    for reader in (fast, slow):
        reader.read_until(lambda r: r.parser.last_event_id)
    big = "x" * 60_000
    count = 300
    reading = gevent.spawn(fast.take, count, 60)
    sent = [server.publish("news", f"{n}:{big}") for n in range(count)]
    assert [m.last_event_id for m in reading.get()] == sent
    wait_for(lambda: server.app.hub.evictions == 1, message="slow subscriber to be dropped")
    slow.read_to_end(timeout=30)
    assert "too slow to keep up; resume from your last id" in slow.parser.comments[-1]
    resumed = server.stream("channel=news", {"Last-Event-ID": slow.parser.last_event_id})
    rest = resumed.take(count - len(slow.messages), timeout=30)
    assert [m.last_event_id for m in slow.messages + rest] == sent


def test_each_event_is_encoded_once_however_many_subscribers(live, monkeypatch):
    server = live()
    readers = [server.stream("channel=news") for _ in range(50)]
    for reader in readers:
        reader.read_until(lambda r: r.parser.last_event_id)
    calls = []
    original = event_module.wire.event_body
    monkeypatch.setattr(event_module.wire, "event_body", lambda *a: calls.append(a) or original(*a))
    server.publish("news", "once")
    for reader in readers:
        assert [m.data for m in reader.take(1)] == ["once"]
    assert len(calls) == 1


def test_events_published_while_history_is_read_come_once_and_in_order():
    class RacingBroker(MemoryBroker):
        """Publishes between the live subscription and the history read."""

        raced = False

        def replay(self, channel, after, limit):
            if not self.raced:
                self.raced = True
                self.publish(channel, "during replay")
            return super().replay(channel, after, limit)

    broker = RacingBroker(history_size=100)
    hub = Hub(broker, queue_size=100)
    start = format_id(broker.head("news"))
    broker.publish("news", "before")
    stream = event_stream(hub, broker, ("news",), start, StreamOptions(retry_ms=100))
    parser, messages = Parser(), []
    while len(messages) < 3:
        messages += parser.feed(next(stream))
        if len(messages) == 2:
            broker.publish("news", "after")
    stream.close()
    assert [m.data for m in messages] == ["before", "during replay", "after"]
    assert hub.subscriber_count == 0


def test_an_event_published_just_after_the_history_read_is_sent_once(live):
    # The live subscription must already be open when history is read:
    # opened after, it would miss what was published in between.
    class PublishingAfterRead(MemoryBroker):
        published = None

        def replay(self, channel, after, limit):
            page = super().replay(channel, after, limit)
            if self.published is None:
                self.published = self.publish(channel, "just after the history read")
            return page

    broker = PublishingAfterRead(history_size=100)
    server = live(broker=broker)
    start = format_id(broker.head("news"))
    server.publish("news", "before")
    reader = server.stream("channel=news", {"Last-Event-ID": start})
    reader.take(1)
    wait_for(lambda: server.app.hub.subscriber_count == 1, message="the live subscription")
    server.publish("news", "live")
    reader.read_until(lambda r: r.messages[-1].data == "live")
    assert broker.published, "history was not read through Broker.replay"
    assert [m.data for m in reader.messages] == ["before", "just after the history read", "live"]


def test_shutdown_ends_open_streams_so_browsers_reconnect(live):
    server = live(heartbeat_seconds=5)
    readers = [server.stream("channel=news") for _ in range(3)]
    for reader in readers:
        reader.read_until(lambda r: r.parser.last_event_id)
    server.app.shutdown()
    for reader in readers:
        reader.read_to_end(timeout=2)
    wait_for(lambda: server.app.hub.subscriber_count == 0, message="subscriptions released")
