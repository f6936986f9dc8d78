"""Issue 8 against a real Redis: every acknowledged event reaches every open
stream once, whatever the timing, lost replies, lost history or large events."""

import json
import random

import gevent
import pytest
import webtest

from ssehub.brokers import REPLAY_PAGE_BYTES
from ssehub.brokers.redis import RedisBroker
from ssehub.cursor import format_id, parse_id
from tests.conftest import wait_for
from tests.redis_proxy import RedisProxy


def assert_every_open_stream_is_registered(server, readers, channel):
    """The invariant behind zombie streams: each open stream is counted and its channel listened to."""
    hub, listener = server.app.hub, server.app.broker._listener
    wait_for(lambda: hub.subscriber_count == len(readers), message=f"{len(readers)} registered subscribers")
    assert hub.channel_count == 1 and set(listener._positions) == {channel}


@pytest.fixture
def proxy(clean_redis):
    proxy = RedisProxy(clean_redis.port)
    yield proxy
    proxy.stop()


def test_streams_opening_and_closing_at_once_never_leave_an_open_one_without_events(live, proxy):
    # Regression: a stream that joined a channel while the last other one left
    # was orphaned; it sent heartbeats but never another event.
    server = live(redis_url=proxy.url)
    first = server.publish("news", "before")
    server.publish("news", "for the long polls to answer with")
    proxy.reply_delay = 0.01  # Redis's confirmations take a while: the race's window
    rng = random.Random(8)

    def keep():
        reader = server.stream("channel=news")
        reader.read_until(lambda r: r.parser.last_event_id)
        return reader

    def pass_by():
        # A long poll with something to send answers and ends at once.
        server.stream("channel=news&ssehub_poll=1", {"Last-Event-ID": first}).read_to_end(timeout=10)

    for round in range(8):
        # The first stream in asks Redis to listen; the others come and go meanwhile.
        work = [keep] + [pass_by] * 10
        greenlets = []
        for task in work:
            greenlets.append(gevent.spawn(task))
            gevent.sleep(rng.random() * 0.003)
        kept = [g.get(timeout=20) for g in greenlets if g.get(timeout=20) is not None]
        assert_every_open_stream_is_registered(server, kept, "news")
        event_id = server.publish("news", f"round {round}")
        for reader in kept:
            reader.read_until(lambda r, sent=event_id: any(m.last_event_id == sent for m in r.messages), timeout=10)
            reader.close()
        wait_for(lambda: server.app.hub.channel_count == 0, message="the channel to empty")


def test_a_publish_whose_reply_is_lost_is_stored_once_and_answered_503_outcome_unknown(live, proxy, clean_redis):
    # Regression: redis-py resent the FCALL after the lost reply: one 201, two copies.
    server = live(redis_url=proxy.url)
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    proxy.drop_reply_to = b"ssehub_publish"
    status, reply = server.request("POST", "/publish", {"channel": "news", "data": "only once"})
    assert proxy.dropped == 1
    assert status == 503, reply
    assert "may or may not have been stored" in reply["error"] and "not resent" in reply["error"]
    assert reply["published"] == [] and reply["unknown"] == {"channel": "news"}
    assert clean_redis.client().xlen("ssehub:{news}") == 1
    after = server.publish("news", "next")
    assert [m.data for m in reader.take(2)] == ["only once", "next"]
    assert reader.messages[-1].last_event_id == after


@pytest.mark.parametrize("loss", ["DEL", "FLUSHALL"])
def test_history_lost_and_begun_anew_within_a_millisecond_is_announced_to_open_streams(live, clean_redis, loss):
    # Regression: new ids fell at or below ids already delivered; the listener
    # dropped them as seen, and open streams got nothing, not even a reset.
    server = live(redis_url=clean_redis.url)
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    old = [server.publish("news", f"old {n}") for n in range(3)]
    reader.take(3)
    with clean_redis.client().pipeline(transaction=False) as pipe:
        pipe.delete("ssehub:{news}") if loss == "DEL" else pipe.flushall()
        for n in range(3):
            pipe.fcall("ssehub_publish", 1, "ssehub:{news}", f"new {n}")
        new = [raw.decode() for raw in pipe.execute()[1:]]
    assert min(parse_id(i) for i in new) > max(parse_id(i) for i in old), "ids of the new history collide"
    reader.read_to_end()  # the hub ends the stream; the browser resumes by id
    resumed = server.stream("channel=news", {"Last-Event-ID": reader.parser.last_event_id})
    messages = resumed.take(4)
    assert [m.type for m in messages] == ["ssehub.reset", "message", "message", "message"]
    assert json.loads(messages[0].data) == {"channel": "news"}
    assert [m.data for m in messages[1:]] == ["new 0", "new 1", "new 2"]
    assert [m.last_event_id for m in messages[1:]] == new
    # An id of the lost history never resumes into the new one.
    from_old = server.stream("channel=news", {"Last-Event-ID": old[-1]})
    assert from_old.take(1)[0].type == "ssehub.reset"


def test_subscribing_replaying_and_reading_heads_of_new_channels_create_no_keys(live, clean_redis):
    server = live(redis_url=clean_redis.url, heartbeat_seconds=5, max_streams_per_client=0)
    client = clean_redis.client()
    queries = [f"channel=new{n}&channel=new{n + 500}&history=3" for n in range(500)]

    def visit(query, resume_from):
        reader = server.stream(query, {"Last-Event-ID": resume_from} if resume_from else None)
        reader.read_until(lambda r: r.parser.last_event_id)
        reader.close()

    for batch in range(0, 500, 100):
        gevent.joinall(
            [gevent.spawn(visit, q, "0-0" if n % 2 else None) for n, q in enumerate(queries[batch : batch + 100])],
            raise_error=True,
        )
    server.stream("channel=never&ssehub_poll=1", {"Last-Event-ID": "1-0"}).read_to_end()
    assert client.dbsize() == 0
    # The channel exists once something is published, and a client that saw
    # nothing yet resumes to its first event exactly.
    first = server.publish("new7", "first")
    resumed = server.stream("channel=new7", {"Last-Event-ID": "0-0"})
    assert [(m.type, m.last_event_id) for m in resumed.take(1)] == [("message", first)]
    assert client.keys() == [b"ssehub:{new7}"]


@pytest.mark.parametrize("mode", ["functions", "scripts"])
def test_readyz_fails_while_redis_refuses_writes_and_recovers(make_app, clean_redis, mode):
    url = clean_redis.url if mode == "functions" else clean_redis.url_for_user("scripts", "-function", "-fcall")
    client = webtest.TestApp(make_app(redis_url=url), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    wait_for(lambda: client.get("/readyz", expect_errors=True).status_int == 200, message="ready")
    admin = clean_redis.client()
    try:
        admin.config_set("maxmemory", 1)  # noeviction, and over it: every write is refused
        assert "maxmemory" in client.get("/readyz", status=503).json["error"]
        assert client.post_json("/publish", {"channel": "news", "data": "x"}, status=503).json["published"] == []
        admin.config_set("maxmemory", 0)
        admin.replicaof("127.0.0.1", 1)  # a replica: READONLY
        assert "ReadOnlyError" in client.get("/readyz", status=503).json["error"]
    finally:
        admin.config_set("maxmemory", 0)
        admin.replicaof("NO", "ONE")
    client.get("/readyz", status=200)


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl"])
def test_an_evicting_maxmemory_policy_is_warned_about_once(make_app, clean_redis, caplog, policy):
    admin = clean_redis.client()
    admin.config_set("maxmemory-policy", policy)
    try:
        broker = make_app(redis_url=clean_redis.url).broker
        wait_for(lambda: broker._listener.connected, message="connected")
    finally:
        admin.config_set("maxmemory-policy", "noeviction")
    warnings = [r.getMessage() for r in caplog.records if "maxmemory-policy" in r.getMessage()]
    assert warnings == [
        f"Redis maxmemory-policy is {policy}: under memory pressure it evicts what ssehub keeps (channel "
        "history: streams resume with ssehub.reset; idempotency keys: retries publish twice); use noeviction"
    ]


BIG = 60_000
BIG_EVENTS = 100


def test_replay_pages_are_bounded_in_bytes_and_page_on_to_the_end(clean_redis):
    broker = RedisBroker(clean_redis.url, history_size=1000, max_event_bytes=65536)
    try:
        ids = [broker.publish("big", f"{n:03}" + "x" * BIG) for n in range(BIG_EVENTS)]
        seen, after, pages = [], None, 0
        while True:
            page = broker.replay("big", after, 500)
            assert sum(len(e.data) for e in page.events) <= REPLAY_PAGE_BYTES
            seen += [e.id for e in page.events]
            pages += 1
            if not page.more:
                break
            after = page.events[-1].id
        assert seen == ids and pages >= BIG_EVENTS * BIG // REPLAY_PAGE_BYTES
    finally:
        broker.close()


def test_concurrent_resumes_of_large_events_all_complete_in_bounded_writes(live, clean_redis):
    # Regression: 500-event pages of 60 KB timed out under ten resumes, and
    # clients that never read pinned a page each (1.3 GB for twenty).
    writes = []

    def recording(app):
        def wrapped(environ, start_response):
            for chunk in app(environ, start_response):
                writes.append(len(chunk))
                yield chunk

        return wrapped

    server = live(redis_url=clean_redis.url, wrapper=recording, heartbeat_seconds=1)
    ids = [server.publish("big", f"{n:03}" + "x" * BIG) for n in range(BIG_EVENTS)]
    start = "0-0"
    idle = [server.stream("channel=big", {"Last-Event-ID": start}) for _ in range(20)]  # never read
    readers = [server.stream("channel=big", {"Last-Event-ID": start}) for _ in range(10)]
    takes = [gevent.spawn(reader.take, BIG_EVENTS, 60) for reader in readers]
    for take in takes:
        assert [m.last_event_id for m in take.get()] == ids
    assert max(writes) <= REPLAY_PAGE_BYTES + BIG + 200
    for reader in idle:
        reader.close()


def test_an_event_published_while_the_first_listen_is_confirmed_is_delivered_without_waiting_for_another(proxy):
    # The listener reads the head, then subscribes: an event published in
    # between reaches it only through the fill when Redis confirms.
    broker = RedisBroker(proxy.url, history_size=100, max_event_bytes=65536)
    delivered = []
    broker.start(delivered.append, lambda channel: None)
    try:
        broker.publish("news", "before listening")
        between = []
        proxy.before_subscribing("ssehub:{news}", lambda: between.append(broker.publish("news", "between")))
        broker.listen("news")
        assert between, "the hub never subscribed to news"
        wait_for(lambda: delivered, message="the event published while subscribing")
        assert [(e.id, e.data) for e in delivered] == [(between[0], "between")]
    finally:
        broker.close()


def test_events_missed_on_several_channels_while_pubsub_reconnects_arrive_merged_in_order(live, proxy, clean_redis):
    server = live(redis_url=proxy.url)
    for channel in "ab":
        # Channels that exist already: ids of a new stream start at a floor far above the clock's.
        server.publish(channel, "before")
    reader = server.stream("channel=a&channel=b")
    reader.read_until(lambda r: r.parser.last_event_id)
    missed = {}  # data -> id

    def publish_on_both_channels():
        for n in range(6):
            missed[f"missed {n}"] = server.app.broker.publish("ab"[n % 2], f"missed {n}")

    proxy.before_subscribing("ssehub:{a}", publish_on_both_channels)
    assert clean_redis.client().client_kill_filter(_type="pubsub") == 1
    arrived = [m.data for m in reader.take(6, timeout=10)]
    assert sorted(arrived) == sorted(missed)
    # Merged by id, so each channel in order too. (Ids of two channels order
    # them only to the millisecond, so publish order is not the yardstick.)
    assert [missed[data] for data in arrived] == sorted(missed.values())
    server.publish("b", "live")
    assert [m.data for m in reader.take(7)][6:] == ["live"]  # nothing came twice


def test_a_stream_whose_history_is_trimmed_past_it_mid_replay_ends_and_resumes_with_a_reset(live, clean_redis):
    history = 2 * (REPLAY_PAGE_BYTES // BIG) + 2  # a replay of all of it takes three pages

    class TrimmedWhileReplaying(RedisBroker):
        """Publishes a whole history's worth right after the second page is read."""

        pages = 0
        newer = None

        def replay(self, channel, after, limit):
            page = super().replay(channel, after, limit)
            self.pages += 1
            if self.pages == 2:
                self.newer = [self.publish(channel, f"new {n}") for n in range(history)]
            return page

    broker = TrimmedWhileReplaying(clean_redis.url, history_size=history, max_event_bytes=65536)
    server = live(broker=broker)
    old = [format_id(broker.publish("big", f"old {n:02} " + "x" * BIG)) for n in range(history)]
    reader = server.stream("channel=big", {"Last-Event-ID": "0-0"})
    reader.read_until(lambda r: r.ended or len(r.messages) >= history, timeout=30)
    assert broker.newer, "the replay did not page through Broker.replay"
    sent = [m.last_event_id for m in reader.messages]
    assert reader.ended and sent == old[: len(sent)], [m.data[:6] for m in reader.messages]  # no gap
    assert sent, "a write holds about a page, so the first went out before the third was read"
    resumed = server.stream("channel=big", {"Last-Event-ID": sent[-1]})
    new = [format_id(event_id) for event_id in broker.newer]
    reset, *rest = resumed.read_until(lambda r: r.parser.last_event_id == new[-1], timeout=10).messages
    assert reset.type == "ssehub.reset" and json.loads(reset.data) == {"channel": "big"}
    assert [m.data for m in rest] == [e.data for e in broker.recent("big", 2 * history)]  # all that is retained


def test_a_notification_in_another_format_neither_stops_the_listener_nor_loses_events(live, clean_redis):
    # Regression: an SPUBLISH by hand (or from another library version) broke
    # the listener's unpacking and left every stream open and silent.
    server = live(redis_url=clean_redis.url)
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    wait_for(lambda: server.app.broker._listener.connected, message="pub/sub connected")
    client = clean_redis.client()
    client.execute_command("SPUBLISH", "ssehub:{news}", "hello")
    stored = client.fcall("ssehub_publish", 1, "ssehub:{news}", "stored").decode()
    after = server.publish("news", "after")
    assert [(m.data, m.last_event_id) for m in reader.take(2)] == [("stored", stored), ("after", after)]
    assert server.app.broker._listener.connected


@pytest.mark.parametrize("refused", [(), ("-function", "-fcall")], ids=["functions", "scripts"])
def test_readyz_fails_when_the_redis_user_may_not_write_ssehub_keys(make_app, clean_redis, refused):
    """An ACL that allows FCALL but not the ssehub:* keys: every publish would be NOPERM (issue 13, item 6)."""
    admin = clean_redis.client()
    # Every command and pub/sub channel, but only other:* keys.
    admin.acl_setuser(
        "elsewhere",
        enabled=True,
        reset=True,
        passwords=["+pw"],
        keys=["other:*"],
        channels=["*"],
        commands=["+@all", *refused],
    )
    try:
        url = clean_redis.url.replace("redis://", "redis://elsewhere:pw@")
        client = webtest.TestApp(make_app(redis_url=url), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
        assert "NoPermissionError" in client.get("/readyz", status=503).json["error"]
        assert client.post_json("/publish", {"channel": "news", "data": "x"}, status=503).json["published"] == []
    finally:
        admin.acl_deluser("elsewhere")
