"""One contract, every broker: ids, order, replay, truncation, notification."""

import time

import pytest

from ssehub.brokers import IdempotencyConflict, history
from ssehub.brokers.history import pages_from
from ssehub.brokers.memory import MemoryBroker
from ssehub.brokers.redis import RedisBroker
from ssehub.idempotency import Idempotency
from tests.conftest import wait_for


@pytest.fixture(params=["memory", "redis", "redis-scripts", "redis-sentinel", "redis-cluster"])
def make_broker(request):
    """Every broker mode: embedded; one Redis with Functions or with scripts
    only (a managed Redis); through Sentinel (a replica: publishes WAIT); a cluster."""
    brokers = []

    def make(history_size=1000):
        if request.param == "memory":
            broker = MemoryBroker(history_size=history_size)
        else:
            broker = RedisBroker(redis_url(), history_size=history_size, max_event_bytes=65536, health_seconds=0.5)
        brokers.append(broker)
        return broker

    def redis_url():
        if request.param == "redis-scripts":  # a managed Redis that refuses Functions
            return request.getfixturevalue("clean_redis").url_for_user("scripts", "-function", "-fcall", "-fcall_ro")
        return topology().url

    def topology():
        fixture = {"redis-sentinel": "clean_sentinels", "redis-cluster": "clean_cluster"}.get(request.param)
        return request.getfixturevalue(fixture or "clean_redis")

    make.lose_history = lambda: topology().flush()  # like a restart without persistence
    yield make
    for broker in brokers:
        broker.close()


def data_of(replay):
    return [event.data for event in replay.events]


def test_publish_returns_ids_that_increase(make_broker):
    broker = make_broker()
    ids = [broker.publish("news", str(n)) for n in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50


def test_replay_after_an_id_returns_only_newer_events_in_order(make_broker):
    broker = make_broker()
    ids = [broker.publish("news", str(n), "kind" if n % 2 else None) for n in range(5)]
    replay = broker.replay("news", ids[1], limit=100)
    assert replay.exact and replay.start == ids[1]
    assert [(e.data, e.type, e.id) for e in replay.events] == [
        ("2", None, ids[2]),
        ("3", "kind", ids[3]),
        ("4", None, ids[4]),
    ]


def test_replay_respects_the_limit_and_pages_on(make_broker):
    broker = make_broker()
    start = broker.head("news")
    ids = [broker.publish("news", str(n)) for n in range(5)]
    first = broker.replay("news", start, limit=2)
    assert data_of(first) == ["0", "1"]
    rest = broker.replay("news", first.events[-1].id, limit=10)
    assert data_of(rest) == ["2", "3", "4"] and rest.events[-1].id == ids[-1]


def test_replay_from_the_newest_id_is_exact_and_empty(make_broker):
    broker = make_broker()
    last = [broker.publish("news", "x") for _ in range(3)][-1]
    replay = broker.replay("news", last, limit=10)
    assert replay.exact and replay.events == []


def test_head_of_an_empty_channel_resumes_exactly_to_its_first_event(make_broker):
    broker = make_broker()
    head = broker.head("quiet")
    broker.publish("quiet", "first")
    replay = broker.replay("quiet", head, limit=10)
    assert replay.exact and data_of(replay) == ["first"]


def test_an_id_older_than_the_history_is_not_exact_and_replays_what_is_left(make_broker):
    broker = make_broker(history_size=3)
    ids = [broker.publish("news", str(n)) for n in range(30)]
    replay = broker.replay("news", ids[0], limit=100)
    assert not replay.exact
    # The Redis broker trims in steps: up to 10% (at least 1) more is kept.
    assert 3 <= len(replay.events) <= 4 and data_of(replay)[-3:] == ["27", "28", "29"]
    exact = broker.replay("news", replay.start, limit=100)
    assert exact.exact and [e.id for e in exact.events] == [e.id for e in replay.events]


@pytest.mark.parametrize("position", [None, (2**40, 0)])
def test_an_unknown_or_future_position_is_not_exact(make_broker, position):
    broker = make_broker()
    broker.publish("news", "a")
    replay = broker.replay("news", position, limit=10)
    assert not replay.exact and data_of(replay) == ["a"]


def test_events_reach_deliver_only_for_listened_channels_once_in_order(make_broker):
    broker = make_broker()
    seen = []
    broker.start(seen.append, lambda channel: None)
    broker.publish("news", "unheard")
    broker.listen("news")
    for n in range(20):
        broker.publish("news", f"heard {n}")
    broker.publish("other", "not listened")
    wait_for(lambda: len(seen) >= 20, message="20 deliveries")
    broker.unlisten("news")
    assert [e.data for e in seen] == [f"heard {n}" for n in range(20)]


def test_channels_have_independent_histories(make_broker):
    broker = make_broker()
    broker.publish("a", "1")
    broker.publish("b", "2")
    assert data_of(broker.replay("a", None, 10)) == ["1"]
    assert data_of(broker.replay("b", None, 10)) == ["2"]


def test_an_id_from_a_lost_history_is_not_exact(make_broker):
    broker = make_broker()
    old = broker.publish("news", "before the history was lost")
    if isinstance(broker, MemoryBroker):
        # The embedded broker's history is lost with its process.
        broker = MemoryBroker(history_size=10, clock=lambda: old[0] / 1000 + 1)
    else:
        wait_for(lambda: time.time() * 1000 > old[0] + 1, message="the clock to move on")
        make_broker.lose_history()
    broker.publish("news", "after")
    replay = broker.replay("news", old, limit=10)
    assert not replay.exact and data_of(replay) == ["after"]


def test_memory_ids_increase_even_when_the_clock_goes_back():
    times = iter([100.0, 100.5, 99.0, 99.0])
    broker = MemoryBroker(history_size=10, clock=lambda: next(times))
    first, second, third = (broker.publish("news", "x") for _ in range(3))
    assert first < second < third


def test_memory_ids_order_events_across_channels_within_one_millisecond():
    # Regression: per-channel sequences gave two channels the same id, so a
    # multi-channel replay could not tell which was published first.
    broker = MemoryBroker(history_size=10, clock=lambda: 100.0)
    ids = [broker.publish(channel, "x") for channel in "abab"]
    assert ids == sorted(ids) and len(set(ids)) == 4


def test_recent_returns_the_newest_events_oldest_first(make_broker):
    broker = make_broker()
    assert broker.recent("news", 3) == []
    ids = [broker.publish("news", str(n), "t" if n == 4 else None) for n in range(5)]
    recent = broker.recent("news", 3)
    assert [(e.data, e.type, e.id) for e in recent] == [("2", None, ids[2]), ("3", None, ids[3]), ("4", "t", ids[4])]
    assert len(broker.recent("news", 50)) == 5


def test_history_pages_on_to_the_end_and_merges_channels_by_id(make_broker):
    broker = make_broker()
    starts = {channel: broker.head(channel) for channel in ("a", "b")}
    # With Redis two channels' ids can be equal (one clock, a sequence per stream).
    published = [(broker.publish("a" if n % 3 else "b", str(n)), str(n)) for n in range(1200)]
    histories = [pages_from(broker.replay, c, broker.replay(c, starts[c], history.PAGE)) for c in ("a", "b")]
    merged = list(history.by_id(histories))
    assert [event.id for event in merged] == sorted(event_id for event_id, _ in published)
    assert sorted((event.id, event.data) for event in merged) == sorted(published)


def test_an_idempotency_key_stores_and_announces_an_event_once(make_broker):
    broker = make_broker()
    seen = []
    broker.start(seen.append, lambda channel: None)
    broker.listen("news")
    key = Idempotency("key-1", "fingerprint-1")
    first, stored = broker.publish_once("news", "once", None, key)
    assert stored
    assert broker.publish_once("news", "once", None, key) == (first, False)
    with pytest.raises(IdempotencyConflict):
        broker.publish_once("news", "changed", None, Idempotency("key-1", "fingerprint-2"))
    after, stored = broker.publish_once("news", "next", None, Idempotency("key-2", "fingerprint-1"))
    assert stored
    wait_for(lambda: len(seen) >= 2, message="two deliveries")
    assert [(e.id, e.data) for e in seen] == [(first, "once"), (after, "next")]
    assert data_of(broker.replay("news", None, 10)) == ["once", "next"]
