import gevent
import gevent.event
import pytest

from ssehub import event as event_module
from ssehub.brokers import BrokerUnavailable
from ssehub.brokers.memory import MemoryBroker
from ssehub.hub import Hub


class CountingBroker(MemoryBroker):
    def __init__(self):
        super().__init__(history_size=100)
        self.listens = []

    def listen(self, channel):
        self.listens.append(("listen", channel))
        return super().listen(channel)

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


def test_an_event_is_encoded_once_and_the_same_event_queued_for_every_subscriber(monkeypatch):
    encodings = []
    encode = event_module.wire.event_body
    monkeypatch.setattr(event_module.wire, "event_body", lambda *args: encodings.append(args) or encode(*args))
    broker = MemoryBroker(history_size=10)
    hub = Hub(broker, queue_size=10)
    subscriptions = [hub.subscribe(["news"]) for _ in range(3)]
    broker.publish("news", "hello")
    [a], [b], [c] = (subscription.wait(timeout=1) for subscription in subscriptions)
    assert a is b is c and a.data == "hello"
    assert len(encodings) == 1


def test_a_subscriber_that_falls_behind_is_evicted_without_affecting_others():
    broker = MemoryBroker(history_size=100)
    hub = Hub(broker, queue_size=3)
    slow, fast = hub.subscribe(["news"]), hub.subscribe(["news"])
    received = []
    for n in range(10):
        broker.publish("news", str(n))
        received.extend(fast.wait(timeout=1))
    assert slow.evicted and not slow.queue
    assert [e.data for e in received] == [str(n) for n in range(10)]
    assert hub.evictions == 1


def test_an_evicted_subscriber_on_several_channels_is_counted_once():
    broker = MemoryBroker(history_size=100)
    hub = Hub(broker, queue_size=1)
    hub.subscribe(["a", "b"])
    for channel in ["a", "a", "b", "b"]:
        broker.publish(channel, "x")
    gevent.sleep(0)  # the broker hands events over in a greenlet of its own
    assert hub.evictions == 1


def test_shutdown_ends_existing_and_new_subscriptions():
    hub = Hub(MemoryBroker(history_size=10), queue_size=10)
    before = hub.subscribe(["news"])
    hub.shutdown()
    after = hub.subscribe(["news"])
    assert before.closed and after.closed
    assert before.wait(timeout=10) == []


def test_a_failed_listen_leaves_nothing_registered():
    class Unreachable(MemoryBroker):
        def listen(self, channel):
            if channel == "b":
                raise ConnectionError("down")

    hub = Hub(Unreachable(history_size=10), queue_size=10)
    with pytest.raises(ConnectionError):
        hub.subscribe(["a", "b"])
    assert hub.subscriber_count == 0 and hub.channel_count == 0


class SlowListenBroker(MemoryBroker):
    """Its listen waits until the test lets it finish, as Redis's confirmation does."""

    def __init__(self):
        super().__init__(history_size=10)
        self.release = gevent.event.AsyncResult()
        self.listens = 0

    def listen(self, channel):
        self.listens += 1
        self.release.get()
        return super().listen(channel)


def test_subscribers_leaving_while_a_listen_is_in_flight_do_not_orphan_the_newcomer():
    # Regression (issue 8): the last other subscriber left during the first
    # one's listen, the channel was dropped, and the newcomer never got an event.
    broker = SlowListenBroker()
    hub = Hub(broker, queue_size=10)
    newcomer = gevent.spawn(hub.subscribe, ["news"])
    gevent.sleep(0)  # the newcomer is now inside listen
    passers_by = [gevent.spawn(hub.subscribe, ["news"]) for _ in range(5)]
    gevent.sleep(0)
    for passer_by in passers_by[:3]:
        passer_by.kill()  # clients that left while waiting
    broker.release.set()
    subscription = newcomer.get(timeout=1)
    for passer_by in passers_by[3:]:
        hub.unsubscribe(passer_by.get(timeout=1))
    assert broker.listens == 1
    assert hub.subscriber_count == 1 and hub.channel_count == 1
    broker.publish("news", "still here")
    assert [event.data for event in subscription.wait(timeout=1)] == ["still here"]


def test_a_failed_listen_fails_everyone_waiting_on_it_and_the_next_subscriber_listens_anew():
    broker = SlowListenBroker()
    hub = Hub(broker, queue_size=10)
    first = gevent.spawn(hub.subscribe, ["news"])
    gevent.sleep(0)
    waiting = [gevent.spawn(hub.subscribe, ["news"]) for _ in range(3)]
    gevent.sleep(0)
    broker.release.set_exception(BrokerUnavailable("Redis did not confirm"))
    for greenlet in [first, *waiting]:
        with pytest.raises(BrokerUnavailable, match="did not confirm"):
            greenlet.get(timeout=1)
    assert hub.subscriber_count == 0 and hub.channel_count == 0
    broker.release = gevent.event.AsyncResult()
    broker.release.set()
    subscription = hub.subscribe(["news"])
    broker.publish("news", "after the outage")
    assert [event.data for event in subscription.wait(timeout=1)] == ["after the outage"]
    assert broker.listens == 2
