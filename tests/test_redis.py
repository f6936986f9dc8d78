"""The Redis broker end to end: selection, one connection per process, FCALL, several hubs."""

import os

import gevent
import redis
import webtest

from ssehub.brokers.redis import COMMAND_POOL_SIZE, RedisBroker
from tests.conftest import wait_for
from tests.redis_server import RedisServer, free_port
from tests.service_process import ROOT


def hub_clients(server):
    """Redis clients other than the test's own CLIENT LIST connection."""
    return [c for c in server.client().client_list() if c["cmd"] != "client|list"]


def test_redis_url_selects_the_redis_broker_and_readyz_says_ready(make_app, clean_redis):
    app = make_app(redis_url=clean_redis.url)
    assert isinstance(app.broker, RedisBroker)
    client = webtest.TestApp(app)
    wait_for(lambda: client.get("/readyz", expect_errors=True).status_int == 200, message="ready")


def test_unreachable_redis_at_start_is_not_ready_refuses_publishes_then_recovers(make_app, tmp_path):
    port = free_port()
    app = make_app(redis_url=f"redis://127.0.0.1:{port}/0")
    client = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    not_ready = client.get("/readyz", status=503).json["error"]
    assert not_ready.startswith("broker unavailable: ConnectionError")
    failed = client.post_json("/publish", {"channel": "news", "data": "x"}, status=503)
    assert failed.json["published"] == []
    server = RedisServer(str(tmp_path))
    server.port, server.url = port, f"redis://127.0.0.1:{port}/0"
    server.start()
    try:
        wait_for(lambda: client.get("/readyz", expect_errors=True).status_int == 200, timeout=10, message="ready")
        client.post_json("/publish", {"channel": "news", "data": "x"}, status=201)
    finally:
        server.stop()


def test_redis_connections_do_not_grow_with_subscribers(live, clean_redis):
    """One pub/sub connection and a fixed command pool, never a connection per browser."""
    server = live(redis_url=clean_redis.url, heartbeat_seconds=5, max_streams_per_client=0)
    server.stream("channel=news").read_until(lambda r: r.parser.last_event_id)
    wait_for(lambda: server.app.broker._listener.connected, message="pub/sub connected")
    with_one = len(hub_clients(clean_redis))

    def connect(n):
        server.stream(f"channel=news&channel=c{n % 10}").read_until(lambda r: r.parser.last_event_id)

    for batch in range(5):  # 100 at a time, concurrently: the worst case for the pool
        gevent.joinall([gevent.spawn(connect, batch * 100 + n) for n in range(100)], raise_error=True)
    assert server.app.hub.subscriber_count == 501
    with_501 = len(hub_clients(clean_redis))
    # The test's own fixture client is one of them.
    # Besides the pool: the listener's pub/sub connection and its own for reading history.
    assert with_one <= with_501 <= 1 + 2 + COMMAND_POOL_SIZE, (with_one, with_501)
    pubsub_connections = [c for c in hub_clients(clean_redis) if int(c.get("ssub", 0)) > 0]
    assert len(pubsub_connections) == 1 and int(pubsub_connections[0]["ssub"]) == 1 + 11
    server.publish("news", "to all")
    for reader in server.readers:
        assert reader.take(1)[0].data == "to all"


def test_the_last_subscriber_leaving_unsubscribes_the_channel(live, clean_redis):
    server = live(redis_url=clean_redis.url)
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    wait_for(lambda: clean_redis.client().execute_command("PUBSUB", "SHARDNUMSUB", "ssehub:{news}")[1] == 1)
    reader.close()
    wait_for(lambda: clean_redis.client().execute_command("PUBSUB", "SHARDNUMSUB", "ssehub:{news}")[1] == 0)


def test_an_application_publishes_with_one_fcall_and_it_is_delivered_and_resumable(live, clean_redis):
    server = live(redis_url=clean_redis.url)
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    start = reader.parser.last_event_id
    client = clean_redis.client()
    first = client.fcall("ssehub_publish", 1, "ssehub:{news}", "from redis-py", "note").decode()
    second = client.fcall("ssehub_publish", 1, "ssehub:{news}", "plain").decode()
    messages = reader.take(2)
    assert [(m.data, m.type, m.last_event_id) for m in messages] == [
        ("from redis-py", "note", first),
        ("plain", "message", second),
    ]
    resumed = server.stream("channel=news", {"Last-Event-ID": start})
    assert [m.data for m in resumed.take(2)] == ["from redis-py", "plain"]


def test_fcall_refuses_what_the_http_api_refuses(clean_redis, make_app):
    broker = make_app(redis_url=clean_redis.url).broker
    wait_for(lambda: broker._listener.connected, message="the library to be loaded")
    client = clean_redis.client()
    for args, message in [
        (("ssehub:{news}", "x", "a\nb"), "without CR, LF or NUL"),
        (("ssehub:{news}", "x", "ssehub.reset"), "not starting with ssehub."),
        (("ssehub:{bad name}", "x"), "key must be ssehub:{channel}"),
        (("news", "x"), "key must be ssehub:{channel}"),
        (("ssehub:{news}", "x" * 65537), "over MAX_EVENT_BYTES"),
    ]:
        try:
            client.fcall("ssehub_publish", 1, *args)
        except redis.ResponseError as error:
            assert message in str(error)
        else:
            raise AssertionError(f"FCALL accepted {args[:2]}")


def test_two_hubs_share_channels_and_a_subscriber_moves_between_them_exactly(live, clean_redis):
    hub_a = live(redis_url=clean_redis.url)
    hub_b = live(redis_url=clean_redis.url)
    on_a = hub_a.stream("channel=news&channel=chat")
    on_a.read_until(lambda r: r.parser.last_event_id)
    sent = [hub_b.publish("news" if n % 3 else "chat", f"via b {n}") for n in range(30)]
    assert [m.data for m in on_a.take(30)] == [f"via b {n}" for n in range(30)]
    assert [m.last_event_id.split("=")[1].split(",")[0] for m in on_a.messages] == sent
    on_a.close()
    for n in range(5):
        hub_a.publish("chat", f"while moving {n}")
    on_b = hub_b.stream("channel=news&channel=chat", {"Last-Event-ID": on_a.messages[-1].last_event_id})
    assert [m.data for m in on_b.take(5)] == [f"while moving {n}" for n in range(5)]
    assert not any(m.type == "ssehub.reset" for m in on_b.messages)


def test_an_entry_written_around_the_function_cannot_inject_fields(live, clean_redis):
    # Regression: a type with a line break, written by a raw XADD, raised while
    # building the event, which would have stalled the listener's gap fill.
    server = live(redis_url=clean_redis.url)
    reader = server.stream("channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    start = reader.parser.last_event_id
    wait_for(lambda: server.app.broker._listener.connected, message="pub/sub connected")
    client = clean_redis.client()
    client.xadd("ssehub:{news}", {"d": "payload", "e": "x\ndata: injected"})
    assert client.client_kill_filter(_type="pubsub") == 1  # the gap fill will read the entry
    assert [(m.type, m.data) for m in reader.take(1)] == [("message", "payload")]
    server.publish("news", "after")
    assert [(m.type, m.data) for m in reader.take(2)] == [("message", "payload"), ("message", "after")]
    resumed = server.stream("channel=news", {"Last-Event-ID": start})
    assert [(m.type, m.data) for m in resumed.take(2)] == [("message", "payload"), ("message", "after")]
    assert b"injected" not in reader.raw + resumed.raw


def test_hubs_with_different_history_sizes_do_not_trim_each_others_channels(make_app, clean_redis):
    """The settings travel with each publish (issue 13, item 5): the hub loaded last used to set them for all."""
    small = make_app(redis_url=clean_redis.url, history_size=5).broker
    large = make_app(redis_url=clean_redis.url, history_size=1000).broker
    for n in range(30):
        small.publish("small", f"s{n}")
        large.publish("large", f"l{n}")
    client = clean_redis.client()
    assert client.xlen("ssehub:{small}") <= 5 + 1
    assert client.xlen("ssehub:{large}") == 30


def test_the_library_loads_as_shipped_and_direct_publishers_get_the_documented_defaults(clean_redis):
    client = clean_redis.client()
    with open(os.path.join(ROOT, "ssehub", "brokers", "ssehub.lua")) as library:
        client.function_load(library.read(), replace=True)  # what redis-cli -x FUNCTION LOAD REPLACE does
    for n in range(1200):
        client.fcall("ssehub_publish", 1, "ssehub:{news}", f"event {n}")
    assert 1000 <= client.xlen("ssehub:{news}") <= 1100  # HISTORY_SIZE's default, trimmed in steps of 10%
    client.fcall("ssehub_publish", 1, "ssehub:{news}", "x" * 65536)
    for args, message in [
        (("x" * 65537,), "over MAX_EVENT_BYTES=65536"),
        (("x", "", "0"), "history-size and max-event-bytes"),
        (("x", "", "10", "1.5"), "history-size and max-event-bytes"),
    ]:
        try:
            client.fcall("ssehub_publish", 1, "ssehub:{news}", *args)
        except redis.ResponseError as error:
            assert message in str(error)
        else:
            raise AssertionError(f"FCALL accepted {args}")
