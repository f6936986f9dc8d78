"""Redis goes away (killed, paused, connection cut) under load: no acknowledged event is lost."""

import time

import gevent
import gevent.event
import pytest

from tests.conftest import wait_for

SUBSCRIBERS = 50


class Publisher:
    """Publishes continuously over HTTP, recording every outcome and how long it took."""

    def __init__(self, server):
        self.server = server
        self.acknowledged: list[str] = []
        self.outcomes: list[tuple[int, float]] = []
        self._stop = gevent.event.Event()
        self._greenlet = gevent.spawn(self._run)

    def _run(self):
        n = 0
        while not self._stop.is_set():
            started = time.monotonic()
            status, reply = self.server.request("POST", "/publish", {"channel": "news", "data": f"event {n}"})
            self.outcomes.append((status, time.monotonic() - started))
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
    statuses = {status for status, _ in publisher.outcomes}
    assert statuses <= {201, 503}, statuses
    assert max(seconds for _, seconds in publisher.outcomes) < 5
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
    assert any(status == 503 for status, _ in publisher.outcomes)
    assert_every_acknowledged_event_arrived_once_in_order(readers, publisher)


def test_redis_paused_longer_than_the_heartbeat_loses_nothing(under_load):
    server, readers, publisher, redis_server = under_load
    redis_server.pause()
    try:
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
