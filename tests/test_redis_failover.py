"""Failovers under load (issue 13): two hubs, 50 subscribers and a publisher
running throughout; every publish is a 201 or a clean 503 within seconds,
/readyz shows the outage, and no acknowledged event is lost or repeated."""

import gevent
import pytest

from tests.conftest import wait_for
from tests.failover_load import CHANNELS, FailoverLoad
from tests.prometheus import samples
from tests.redis_cluster_nodes import ClusterNodes
from tests.redis_sentinels import SentinelSet
from tests.service_process import Service
from tests.sse import ResumingSubscriber, StreamReader


@pytest.fixture
def cluster(tmp_path):
    topology = ClusterNodes(str(tmp_path)).start()
    yield topology
    topology.stop()


@pytest.fixture
def sentinels(tmp_path):
    topology = SentinelSet(str(tmp_path)).start()
    yield topology
    topology.stop()


@pytest.mark.timeout(120)
def test_a_sentinel_failover_under_load_loses_no_acknowledged_event(sentinels):
    load = FailoverLoad(sentinels.url)
    try:
        load.publisher.wait_for_more(30)
        old = sentinels.primary()
        sentinels.failover()
        assert sentinels.primary() != old
        load.finish()
        assert load.publisher.unavailable > 0 and load.readiness.refusals, "the failover was not noticed"
    finally:
        load.stop()


@pytest.mark.timeout(120)
def test_cluster_failovers_under_load_lose_no_acknowledged_event(cluster):
    owners = {cluster.primary_for(f"ssehub:{{{channel}}}").port for channel in CHANNELS}
    assert len(owners) == 3, "the channels must spread over all three primaries"
    load = FailoverLoad(cluster.url)
    try:
        load.publisher.wait_for_more(30)
        # A coordinated failover of one shard...
        cluster.failover(cluster.replica_of(cluster.primary_for("ssehub:{ch0}")))
        load.publisher.wait_for_more(30)
        # ...then a primary killed, and restarted by its operator a little later.
        victim = cluster.primary_for("ssehub:{ch1}")
        cluster.kill(victim)
        cluster.wait_ok()
        load.publisher.wait_for_more(10)
        cluster.restart(victim)
        load.finish()
        assert load.publisher.unavailable > 0 and load.readiness.refusals, "the failovers were not noticed"
    finally:
        load.stop()


@pytest.mark.timeout(120)
def test_a_slot_moved_to_another_primary_under_load_loses_no_acknowledged_event(cluster):
    """While its key has moved and the slot has not, the old owner answers ASK; then MOVED, and
    its subscribers get a SUNSUBSCRIBE from Redis."""
    load = FailoverLoad(cluster.url)
    try:
        load.publisher.wait_for_more(30)
        source = cluster.primary_for("ssehub:{ch0}")
        target = next(node for node in cluster.primaries() if node.port != source.port)
        cluster.move_slot_of("ssehub:{ch0}", target)
        assert cluster.primary_for("ssehub:{ch0}").port == target.port
        load.finish()
    finally:
        load.stop()


@pytest.mark.timeout(120)
def test_a_hub_outlives_its_whole_cluster_going_down_and_one_starts_while_it_is(cluster):
    """No node answering is no RedisError to redis-py's cluster client: it must still make a
    503 and a later recovery, never a dead listener, a 500 or a crashed start."""
    hub = Service({"REDIS_URL": cluster.url, "HEARTBEAT_SECONDS": "1", "RETRY_MS": "200"})
    hub.wait_listening()
    subscriber = ResumingSubscriber("127.0.0.1", hub.port, "/events?channel=ch0")
    wait_for(lambda: subscriber.last_event_id, message="subscribed")
    for node in cluster.nodes:
        node.kill()
    late = Service({"REDIS_URL": cluster.url, "HEARTBEAT_SECONDS": "1"})
    try:
        late.wait_listening()
        for service in (hub, late):
            wait_for(lambda service=service: service.request("GET", "/readyz")[0] == 503, message="not ready")
            status, reply = service.request("POST", "/publish", {"channel": "ch0", "data": "lost"})
            assert status == 503 and reply["error"], (status, reply)
        gevent.sleep(2)  # the listener's sessions fail and try the topology again
        cluster.restart_all()
        for service in (hub, late):
            wait_for(lambda service=service: service.request("GET", "/readyz")[0] == 200, timeout=30, message="ready")
        published = [hub.publish("ch0", "after"), late.publish("ch0", "after too")]
        wait_for(lambda: [m.last_event_id for m in subscriber.messages][-2:] == published, message="delivered")
        for service in (hub, late):
            assert "Traceback" not in service.output()
    finally:
        subscriber.stop()
        late.stop()
        hub.stop()


@pytest.mark.timeout(120)
def test_publishes_wait_for_every_replica_through_sentinel_and_a_plain_url(sentinels):
    """A 201 needs every replica that may be promoted: with the only replica gone, publishes
    through Sentinel and to the primary's plain URL get 503 'unknown', and /readyz says why."""
    primary = sentinels.primary()
    hubs = [Service({"REDIS_URL": url}) for url in (sentinels.url, primary.url)]
    try:
        for hub in hubs:
            hub.wait_listening()
            wait_for(lambda hub=hub: hub.request("GET", "/readyz")[0] == 200, message="ready")
            hub.publish("news", "replicated")  # counts the replicas
        replica = sentinels.replica()
        sentinels.kill(replica)
        for hub in hubs:
            status, reply = hub.request("POST", "/publish", {"channel": "news", "data": "alone"})
            assert status == 503 and "0 of 1 replicas acknowledged" in reply["error"] and "unknown" in reply
            status, reply = hub.request("GET", "/readyz")
            assert status == 503 and "replicas are in sync" in reply["error"]
        sentinels.restart(replica)
        for hub in hubs:
            wait_for(lambda hub=hub: hub.request("GET", "/readyz")[0] == 200, message="ready again")
            # For a second after a shortfall a publish is refused at once (nothing stored); then 201s.
            again = {"channel": "news", "data": "replicated again"}
            wait_for(lambda hub=hub, again=again: hub.request("POST", "/publish", again)[0] == 201, message="201s")
    finally:
        for hub in hubs:
            hub.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("retried_by", ["the same hub", "a hub with PUBLISH_ACK=primary"])
def test_an_event_stored_while_its_replica_was_away_reaches_streams_when_its_publish_is_retried(sentinels, retried_by):
    """A 503 "unknown" stored the event without announcing it; the retry under the same
    Idempotency-Key finds it stored (a repeat) and must still bring it to open streams,
    whether it waits for replicas again or not."""
    hub = Service({"REDIS_URL": sentinels.url})
    other = Service({"REDIS_URL": sentinels.url, "PUBLISH_ACK": "primary"}) if retried_by != "the same hub" else hub
    try:
        for each in {hub, other}:
            each.wait_listening()
            wait_for(lambda each=each: each.request("GET", "/readyz")[0] == 200, message="ready")
        hub.publish("news", "replicated")  # counts the replicas
        reader = StreamReader("127.0.0.1", hub.port, "/events?channel=news")
        reader.read_until(lambda r: r.parser.last_event_id)
        replica = sentinels.replica()
        sentinels.kill(replica)
        once, body = {"Idempotency-Key": "order-17"}, {"channel": "news", "data": "once"}
        status, reply = hub.request("POST", "/publish", body, once)
        assert status == 503 and "unknown" in reply
        if other is hub:
            sentinels.restart(replica)
        wait_for(lambda: other.request("POST", "/publish", body, once)[0] == 201, timeout=20, message="the retry's 201")
        assert [m.data for m in reader.take(1)] == ["once"]  # no later publish brings it
        figures = samples(other.request_raw("GET", "/metrics")[1])
        assert figures['ssehub_publishes_total{outcome="duplicate_key"}'] == 1
    finally:
        for each in {hub, other}:
            each.stop()
