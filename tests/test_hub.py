import pytest

from ssehub.brokers.memory import MemoryBroker
from ssehub.hub import Hub


class CountingBroker(MemoryBroker):
    def __init__(self):
        super().__init__(history_size=100)
        self.listens = []

    def listen(self, channel):
        self.listens.append(("listen", channel))
        super().listen(channel)

    def unlisten(self, channel):
        self.listens.append(("unlisten", channel))
        super().unlisten(channel)


def test_one_broker_subscription_per_channel_however_many_subscribers():
    broker = CountingBroker()
    hub = Hub(broker, queue_size=10)
    subscriptions = [hub.subscribe(["news"]) for _ in range(100)]
    assert broker.listens == [("listen", "news")]
    for subscription in subscriptions:
        hub.unsubscribe(subscription)
    assert broker.listens == [("listen", "news"), ("unlisten", "news")]
    assert hub.subscriber_count == 0 and hub.channel_count == 0


def test_every_subscriber_gets_the_same_encoded_bytes():
    broker = MemoryBroker(history_size=10)
    hub = Hub(broker, queue_size=10)
    first, second = hub.subscribe(["news"]), hub.subscribe(["news"])
    broker.publish("news", "hello")
    [a], [b] = first.wait(0), second.wait(0)
    assert a.frame is b.frame


def test_a_subscriber_that_falls_behind_is_evicted_without_affecting_others():
    broker = MemoryBroker(history_size=100)
    hub = Hub(broker, queue_size=3)
    slow, fast = hub.subscribe(["news"]), hub.subscribe(["news"])
    received = []
    for n in range(10):
        broker.publish("news", str(n))
        received.extend(fast.wait(0))
    assert slow.evicted and not slow.queue
    assert [e.data for e in received] == [str(n) for n in range(10)]
    assert hub.evictions == 1


def test_an_evicted_subscriber_on_several_channels_is_counted_once():
    broker = MemoryBroker(history_size=100)
    hub = Hub(broker, queue_size=1)
    hub.subscribe(["a", "b"])
    for channel in ["a", "a", "b", "b"]:
        broker.publish(channel, "x")
    assert hub.evictions == 1


def test_shutdown_ends_existing_and_new_subscriptions():
    hub = Hub(MemoryBroker(history_size=10), queue_size=10)
    before = hub.subscribe(["news"])
    hub.shutdown()
    after = hub.subscribe(["news"])
    assert before.closed and after.closed
    assert before.wait(10) == []


def test_a_failed_listen_leaves_nothing_registered():
    class Unreachable(MemoryBroker):
        def listen(self, channel):
            if channel == "b":
                raise ConnectionError("down")

    hub = Hub(Unreachable(history_size=10), queue_size=10)
    with pytest.raises(ConnectionError):
        hub.subscribe(["a", "b"])
    assert hub.subscriber_count == 0 and hub.channel_count == 0
