"""One contract, every broker: ids, order, replay, truncation, notification."""

import pytest

from ssehub.brokers.memory import MemoryBroker


@pytest.fixture(params=["memory"])
def make_broker(request):
    def make(history_size=1000):
        return MemoryBroker(history_size=history_size)

    return make


def test_publish_returns_ids_that_increase(make_broker):
    broker = make_broker()
    ids = [broker.publish("news", str(n)).id for n in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50


def test_ids_increase_even_when_the_clock_goes_back():
    times = iter([100.0, 100.5, 99.0, 99.0])
    broker = MemoryBroker(history_size=10, clock=lambda: next(times))
    first, second, third = (broker.publish("news", "x").id for _ in range(3))
    assert first < second < third


def test_replay_after_an_id_returns_only_newer_events_in_order(make_broker):
    broker = make_broker()
    events = [broker.publish("news", str(n)) for n in range(5)]
    replay = broker.replay("news", events[1].id, limit=100)
    assert replay.exact and replay.start == events[1].id
    assert [e.data for e in replay.events] == ["2", "3", "4"]


def test_replay_respects_the_limit_and_pages_on(make_broker):
    broker = make_broker()
    events = [broker.publish("news", str(n)) for n in range(5)]
    first = broker.replay("news", broker.replay("news", None, 1).start, limit=2)
    assert [e.data for e in first.events] == ["0", "1"]
    rest = broker.replay("news", first.events[-1].id, limit=10)
    assert [e.data for e in rest.events] == ["2", "3", "4"]
    assert rest.events[-1].id == events[-1].id


def test_replay_from_the_newest_id_is_exact_and_empty(make_broker):
    broker = make_broker()
    last = [broker.publish("news", "x") for _ in range(3)][-1]
    replay = broker.replay("news", last.id, limit=10)
    assert replay.exact and replay.events == []


def test_head_of_an_empty_channel_resumes_exactly_to_its_first_event(make_broker):
    broker = make_broker()
    head = broker.head("quiet")
    broker.publish("quiet", "first")
    replay = broker.replay("quiet", head, limit=10)
    assert replay.exact and [e.data for e in replay.events] == ["first"]


def test_an_id_older_than_the_history_is_not_exact_and_replays_what_is_left(make_broker):
    broker = make_broker(history_size=3)
    events = [broker.publish("news", str(n)) for n in range(6)]
    replay = broker.replay("news", events[0].id, limit=10)
    assert not replay.exact
    assert [e.data for e in replay.events] == ["3", "4", "5"]
    assert replay.start == events[2].id


def test_the_id_just_before_the_retained_history_is_still_exact(make_broker):
    broker = make_broker(history_size=3)
    events = [broker.publish("news", str(n)) for n in range(6)]
    replay = broker.replay("news", events[2].id, limit=10)
    assert replay.exact and [e.data for e in replay.events] == ["3", "4", "5"]


@pytest.mark.parametrize("position", [None, (2**62, 0)])
def test_an_unknown_or_future_position_is_not_exact(make_broker, position):
    broker = make_broker()
    broker.publish("news", "a")
    replay = broker.replay("news", position, limit=10)
    assert not replay.exact and [e.data for e in replay.events] == ["a"]


def test_an_id_from_a_previous_process_is_not_exact():
    # The embedded broker tells lifetimes apart by its start time (a restart
    # takes far more than a millisecond); the Redis broker keeps its history.
    old_id = MemoryBroker(history_size=10, clock=lambda: 1000.0).publish("news", "before restart").id
    broker = MemoryBroker(history_size=10, clock=lambda: 1001.0)
    broker.publish("news", "after restart")
    replay = broker.replay("news", old_id, limit=10)
    assert not replay.exact
    assert [e.data for e in replay.events] == ["after restart"]


def test_events_reach_deliver_only_for_listened_channels(make_broker):
    broker = make_broker()
    seen = []
    broker.start(seen.append)
    broker.publish("news", "unheard")
    broker.listen("news")
    broker.publish("news", "heard")
    broker.publish("other", "not listened")
    broker.unlisten("news")
    broker.publish("news", "unheard again")
    assert [e.data for e in seen] == ["heard"]


def test_channels_have_independent_histories(make_broker):
    broker = make_broker()
    broker.publish("a", "1")
    broker.publish("b", "2")
    assert [e.data for e in broker.replay("a", None, 10).events] == ["1"]
    assert [e.data for e in broker.replay("b", None, 10).events] == ["2"]
