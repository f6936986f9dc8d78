"""Streams whose token runs out while they are open (issue 11, item 5).

At exp (+ the leeway) the stream gets `ssehub.token-expired` with its
position as the id and a long retry, and ends; a client that reconnects with
a fresh token from that id misses nothing and gets nothing twice. Checked on
each way a stream is served: handed over (one channel), with a greenlet
(several channels), and long-polling; and for a crowd expiring at once while
events are published.
"""

import http.client
import time

import gevent
import gevent.event

from ssehub.tokens import LEEWAY_SECONDS
from tests.conftest import wait_for
from tests.tokens import SECRET, mint

EXPIRED = "ssehub.token-expired"


def expiring_token(subscribe: list[str], seconds: float) -> str:
    """A token the hub accepts for about `seconds` more (its exp is in the past, within the leeway)."""
    return mint(subscribe, lifetime=seconds - LEEWAY_SECONDS)


def test_a_handed_over_stream_gets_token_expired_at_expiry_and_resumes_exactly(live):
    hub = live(jwt_secret=SECRET)
    reader = hub.stream(f"channel=user.42&token={expiring_token(['user.42'], 1.0)}")
    ends_after = time.time() + 1.0 - 0.2
    first = hub.publish("user.42", "before")
    assert reader.take(1)[0].data == "before"
    assert len(hub.app.hub._subscriptions) == 1
    reader.read_to_end(timeout=5)
    assert time.time() >= ends_after
    expired = reader.messages[-1]
    assert (expired.type, expired.data, expired.last_event_id) == (EXPIRED, '{"reason": "expired"}', first)
    assert reader.parser.retry == 30_000
    wait_for(lambda: hub.app.hub.subscriber_count == 0, message="the expired stream to be released")

    missed = [hub.publish("user.42", f"while away {n}") for n in range(3)]
    again = hub.stream(f"channel=user.42&token={mint(['user.42'])}", {"Last-Event-ID": expired.last_event_id})
    assert [(m.data, m.last_event_id) for m in again.take(3)] == [(f"while away {n}", missed[n]) for n in range(3)]
    hub.publish("user.42", "live again")
    assert [m.data for m in again.take(4)][-1] == "live again"


def test_a_several_channel_stream_expires_with_a_cursor_that_resumes_every_channel(live):
    hub = live(jwt_secret=SECRET, public_channels=("news",))
    reader = hub.stream(f"channel=user.42&channel=news&token={expiring_token(['user.42'], 1.0)}")
    hub.publish("news", "n1")
    hub.publish("user.42", "u1")
    assert [m.data for m in reader.take(2)] == ["n1", "u1"]
    reader.read_to_end(timeout=5)
    expired = reader.messages[-1]
    assert expired.type == EXPIRED and expired.last_event_id.startswith("user.42=")

    hub.publish("news", "n2")
    hub.publish("user.42", "u2")
    again = hub.stream(
        f"channel=user.42&channel=news&token={mint(['user.42'])}", {"Last-Event-ID": expired.last_event_id}
    )
    assert [m.data for m in again.take(2)] == ["n2", "u2"]


def test_a_long_poll_held_open_ends_with_token_expired(live):
    hub = live(jwt_secret=SECRET)
    head = hub.publish("user.42", "old")
    reader = hub.stream(f"channel=user.42&ssehub_poll=1&lastEventId={head}&token={expiring_token(['user.42'], 1.0)}")
    reader.read_to_end(timeout=5)
    (expired,) = reader.messages
    assert (expired.type, expired.last_event_id) == (EXPIRED, head)


def test_a_stream_that_ends_first_leaves_no_timer_behind(live):
    hub = live(jwt_secret=SECRET)
    reader = hub.stream(f"channel=user.42&token={expiring_token(['user.42'], 0.5)}")
    reader.read_until(lambda r: r.parser.last_event_id != "")
    (subscription,) = hub.app.hub._subscriptions
    reader.close()
    wait_for(lambda: hub.app.hub.subscriber_count == 0, message="the stream to end")
    assert subscription._expiry is None
    gevent.sleep(0.7)
    assert not subscription.expired


def test_a_crowd_whose_tokens_expire_together_while_events_flow_resumes_without_loss(live):
    """100 streams, half handed over and half with a greenlet, expire at the
    same moment while events are published every few milliseconds; each
    reconnects with a fresh token from the id it got, and what each saw is
    exactly the events of its channels from where it started, in order, once."""
    hub = live(jwt_secret=SECRET, public_channels=("news",))
    token = expiring_token(["user.*"], 1.5)
    queries = ["channel=user.1" if n % 2 else "channel=user.1&channel=news" for n in range(100)]
    readers = [hub.stream(f"{query}&token={token}") for query in queries]
    for reader in readers:
        reader.read_until(lambda r: r.parser.last_event_id != "")
    starts = [positions(reader.parser.last_event_id, query) for query, reader in zip(queries, readers, strict=True)]
    published: list[tuple[str, str, tuple[int, int]]] = []
    stop = gevent.event.Event()

    def publish_until_stopped():
        count = 0
        while not stop.is_set():
            channel = "news" if count % 3 == 0 else "user.1"
            data = f"{channel}:{count}"
            published.append((channel, data, as_pair(hub.publish(channel, data))))
            count += 1
            gevent.sleep(0.003)

    publisher = gevent.spawn(publish_until_stopped)
    gevent.joinall([gevent.spawn(reader.read_to_end, 8) for reader in readers], raise_error=True)
    resumed = []
    for query, reader in zip(queries, readers, strict=True):
        expired = reader.messages[-1]
        assert expired.type == EXPIRED and expired.last_event_id
        resumed.append(hub.stream(f"{query}&token={mint(['user.*'])}", {"Last-Event-ID": expired.last_event_id}))
    gevent.sleep(0.3)
    stop.set()
    publisher.get()
    for query, start, first, second in zip(queries, starts, readers, resumed, strict=True):
        wanted = [data for channel, data, event_id in published if channel in start and event_id > start[channel]]
        second.read_until(lambda r, last=wanted[-1]: any(m.data == last for m in r.messages), timeout=10)
        seen = [m.data for m in first.messages[:-1] + second.messages if m.type == "message"]
        assert seen == wanted, query


def as_pair(event_id: str) -> tuple[int, int]:
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


def positions(last_event_id: str, query: str) -> dict[str, tuple[int, int]]:
    """Where a stream started, per channel, from the id it was first sent."""
    channels = [part.removeprefix("channel=") for part in query.split("&")]
    if "=" not in last_event_id:
        return {channels[0]: as_pair(last_event_id)}
    return {channel: as_pair(event_id) for channel, event_id in (part.split("=") for part in last_event_id.split(","))}


def test_a_long_replay_stops_at_expiry_and_resumes_exactly(live):
    """A slow client resuming from far back gets no more history once its
    token ran out: the stream ends (with token-expired if its last write got
    through, else cut in that write), and resuming from the last event it got
    brings the rest, in order, once."""
    hub = live(jwt_secret=SECRET, history_size=5000)
    first = hub.publish("user.42", "0")
    for n in range(1, 4000):  # 16 MB: more than the socket buffers hold, so the replay waits for the reader
        hub.app.broker.publish("user.42", str(n) + " " * 4000)
    reader = hub.stream(
        f"channel=user.42&token={expiring_token(['user.42'], 0.3)}", {"Last-Event-ID": first}, small_window=True
    )
    gevent.sleep(0.6)  # expired while the replay waited for the client to read
    hub.publish("user.42", "after expiry")
    try:
        reader.read_to_end(timeout=10)
    except http.client.IncompleteRead:
        pass  # cut in the write that was under way at expiry
    sent = [m for m in reader.messages if m.type == "message"]
    assert 0 < len(sent) < 3999 and [m.data.split()[0] for m in sent] == [str(n) for n in range(1, len(sent) + 1)]
    if reader.messages[-1].type == EXPIRED:
        assert reader.messages[-1].last_event_id == sent[-1].last_event_id
    again = hub.stream(f"channel=user.42&token={mint(['user.42'])}", {"Last-Event-ID": sent[-1].last_event_id})
    rest = again.read_until(lambda r: any(m.data == "after expiry" for m in r.messages), timeout=20).messages
    assert [m.data.split()[0] for m in rest[:-1]] == [str(n) for n in range(len(sent) + 1, 4000)]


def test_a_handed_over_stream_that_stopped_reading_ends_at_expiry_not_at_the_write_timeout(live):
    hub = live(jwt_secret=SECRET, write_timeout=60)
    reader = hub.stream(f"channel=user.42&token={expiring_token(['user.42'], 1.0)}", small_window=True)
    reader.read_until(lambda r: r.parser.last_event_id != "")
    for n in range(10):  # 10 MB: more than the socket buffers hold, so a drainer waits to write
        hub.app.broker.publish("user.42", f"{n} " + "x" * 2**20)
    wait_for(lambda: hub.app.hub.subscriber_count == 0, timeout=5, message="the stream to end at expiry")


def test_a_several_channel_stream_that_stopped_reading_ends_at_expiry_too(live):
    """Written by the server, not handed over: its write is bounded by the token too."""
    hub = live(jwt_secret=SECRET, write_timeout=60, public_channels=("news",))
    query = f"channel=user.42&channel=news&token={expiring_token(['user.42'], 1.0)}"
    reader = hub.stream(query, small_window=True)
    reader.read_until(lambda r: r.parser.last_event_id != "")
    for n in range(10):
        hub.app.broker.publish("news", f"{n} " + "x" * 2**20)
    wait_for(lambda: hub.app.hub.subscriber_count == 0, timeout=5, message="the stream to end at expiry")
