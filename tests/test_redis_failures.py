"""Redis goes away (killed, paused, connection cut) under load: no acknowledged event is lost."""

import json

import gevent
import gevent.event
import pytest

from tests.conftest import wait_for
from tests.redis_proxy import RedisProxy

SUBSCRIBERS = 50


class Publisher:
    """Publishes continuously over HTTP, recording every answer."""

    def __init__(self, server):
        self.server = server
        self.acknowledged: list[str] = []
        self.statuses: list[int] = []
        self._stop = gevent.event.Event()
        self._greenlet = gevent.spawn(self._run)

    def _run(self):
        n = 0
        while not self._stop.is_set():
            # Only a publish held until Redis returns would be a fault, and the
            # pause test catches that without a clock; the timeout just ends a hung run.
            body = {"channel": "news", "data": f"event {n}"}
            status, reply = self.server.request("POST", "/publish", body, timeout=60)
            self.statuses.append(status)
            if status == 201:
                self.acknowledged.append(reply["id"])
            n += 1
            gevent.sleep(0.005)

    def wait_for_more(self, count, timeout=20):
        target = len(self.acknowledged) + count
        wait_for(lambda: len(self.acknowledged) >= target, timeout=timeout, message=f"{count} more acknowledged")

    def stop(self):
        self._stop.set()
        self._greenlet.get(timeout=10)


@pytest.fixture
def under_load(live, own_redis):
    server = live(redis_url=own_redis.url, heartbeat_seconds=0.2)
    readers = [server.stream("channel=news") for _ in range(SUBSCRIBERS)]
    for reader in readers:
        reader.read_until(lambda r: r.parser.last_event_id)
    publisher = Publisher(server)
    publisher.wait_for_more(20)
    yield server, readers, publisher, own_redis
    publisher.stop()


def assert_every_acknowledged_event_arrived_once_in_order(readers, publisher):
    publisher.stop()
    acknowledged = set(publisher.acknowledged)
    assert set(publisher.statuses) <= {201, 503}, set(publisher.statuses)
    for reader in readers:
        reader.read_until(lambda r: acknowledged <= {m.last_event_id for m in r.messages}, timeout=20)
        ids = [tuple(map(int, m.last_event_id.split("-"))) for m in reader.messages]
        assert ids == sorted(set(ids)), "out of order or repeated"


def test_a_redis_restart_loses_no_acknowledged_event(under_load):
    server, readers, publisher, redis_server = under_load
    redis_server.kill()
    wait_for(lambda: server.request("GET", "/readyz")[0] == 503, message="readyz to report the outage")
    redis_server.start()
    wait_for(lambda: server.request("GET", "/readyz")[0] == 200, timeout=15, message="readyz to recover")
    publisher.wait_for_more(20)
    assert 503 in publisher.statuses
    assert_every_acknowledged_event_arrived_once_in_order(readers, publisher)


def test_redis_paused_longer_than_the_heartbeat_loses_nothing(under_load):
    server, readers, publisher, redis_server = under_load
    refused = publisher.statuses.count(503)
    redis_server.pause()
    try:
        # Publishes are answered while Redis is still paused, not held until it returns.
        wait_for(lambda: publisher.statuses.count(503) > refused, timeout=20, message="a 503 during the pause")
        wait_for(lambda: server.request("GET", "/readyz")[0] == 503, timeout=10, message="readyz to report the pause")
        reader = readers[0]
        heartbeats = reader.parser.comments.count("")
        reader.read_until(lambda r: r.parser.comments.count("") > heartbeats + 2)  # streams stay alive
    finally:
        redis_server.resume()
    wait_for(lambda: server.request("GET", "/readyz")[0] == 200, timeout=15, message="readyz to recover")
    publisher.wait_for_more(20)
    assert_every_acknowledged_event_arrived_once_in_order(readers, publisher)


def test_a_pubsub_connection_killed_by_the_server_loses_nothing(under_load):
    server, readers, publisher, redis_server = under_load
    killed = redis_server.client().client_kill_filter(_type="pubsub")
    assert killed == 1
    publisher.wait_for_more(50)
    wait_for(lambda: server.app.broker._listener.connected, message="pub/sub back")
    assert_every_acknowledged_event_arrived_once_in_order(readers, publisher)


def test_history_trimmed_past_a_hub_during_an_outage_ends_its_streams_and_they_resume_with_a_reset(live, own_redis):
    proxy = RedisProxy(own_redis.port)
    try:
        server = live(redis_url=proxy.url, history_size=10)
        reader = server.stream("channel=news")
        reader.read_until(lambda r: r.parser.last_event_id)
        seen = server.publish("news", "seen")
        reader.take(1)
        missed = []

        def publish_past_the_history():
            # Others publish before the hub is subscribed again: more than it keeps
            # (with the same history size: it travels with each publish).
            direct = own_redis.client()
            for n in range(30):
                missed.append(direct.fcall("ssehub_publish", 1, "ssehub:{news}", f"missed {n}", "", 10).decode())

        proxy.before_subscribing("ssehub:{news}", publish_past_the_history)
        own_redis.kill()
        wait_for(lambda: server.request("GET", "/readyz")[0] == 503, message="readyz to report the outage")
        own_redis.start()
        reader.read_until(lambda r: r.ended or len(r.messages) > 1, timeout=20)
        assert missed, "the hub never subscribed again"
        # The hub cannot fill the gap: it ends the stream rather than skip it.
        assert reader.ended and [m.data for m in reader.messages] == ["seen"]
        resumed = server.stream("channel=news", {"Last-Event-ID": seen})
        reset, *rest = resumed.read_until(lambda r: r.parser.last_event_id == missed[-1]).messages
        assert reset.type == "ssehub.reset" and json.loads(reset.data) == {"channel": "news"}
        retained = [e.data for e in server.app.broker.recent("news", 30)]
        assert len(retained) < 30 and [m.data for m in rest] == retained
    finally:
        proxy.stop()
