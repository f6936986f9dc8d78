"""A deploy (SIGTERM) or a crash (SIGKILL) of a hub under a thousand resuming
subscribers, with a publisher running: every subscriber gets every
acknowledged event once, in order (issue 8, item 2)."""

import signal

import gevent
import gevent.event
import pytest

from tests.conftest import wait_for
from tests.service_process import Service
from tests.sse import ResumingSubscriber

SUBSCRIBERS = 1000


class RedisPublisher:
    """Publishes straight through Redis, as an application would, while the hub restarts."""

    def __init__(self, redis_server, interval: float = 0.1):
        self._client = redis_server.client()
        self._interval = interval
        self.acknowledged: list[str] = []
        self._stop = gevent.event.Event()
        self._greenlet = gevent.spawn(self._run)

    def _run(self):
        while not self._stop.is_set():
            n = len(self.acknowledged)
            self.acknowledged.append(self._client.fcall("ssehub_publish", 1, "ssehub:{news}", f"event {n}").decode())
            gevent.sleep(self._interval)

    def wait_for_more(self, count):
        target = len(self.acknowledged) + count
        wait_for(lambda: len(self.acknowledged) >= target, timeout=30, message=f"{count} more published")

    def stop(self):
        self._stop.set()
        self._greenlet.get(timeout=10)


@pytest.fixture
def hubs():
    started = []

    def start(**kwargs):
        started.append(Service(**kwargs))
        started[-1].wait_listening()
        return started[-1]

    yield start
    for hub in started:
        hub.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_hub_restarted_under_a_thousand_resuming_subscribers_loses_nothing(hubs, clean_redis, signum):
    env = {"REDIS_URL": clean_redis.url, "HEARTBEAT_SECONDS": "1", "RETRY_MS": "200", "MAX_STREAMS_PER_CLIENT": "0"}
    hub = hubs(env=env)
    subscribers = [ResumingSubscriber("127.0.0.1", hub.port, "/events?channel=news") for _ in range(SUBSCRIBERS)]
    try:
        wait_for(lambda: all(s.last_event_id for s in subscribers), timeout=60, message="every subscriber connected")
        publisher = RedisPublisher(clean_redis)
        publisher.wait_for_more(10)
        hub.process.send_signal(signum)
        hub.process.wait(timeout=15)
        replacement = hubs(env=env, port=hub.port)
        wait_for(lambda: all(s.connects >= 2 for s in subscribers), timeout=60, message="every subscriber back")
        publisher.wait_for_more(10)
        publisher.stop()
        acknowledged = publisher.acknowledged

        def has_all(subscriber):
            return len(subscriber.messages) >= len(acknowledged)

        wait_for(lambda: all(has_all(s) for s in subscribers), timeout=60, message="every event everywhere")
        for subscriber in subscribers:
            assert [(m.type, m.last_event_id) for m in subscriber.messages] == [("message", i) for i in acknowledged]
        assert "Traceback" not in replacement.output()
    finally:
        for subscriber in subscribers:
            subscriber.stop()
