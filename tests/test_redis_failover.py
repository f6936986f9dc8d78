"""Failovers under load (issue 13): two hubs, 50 subscribers and a publisher
running throughout; every publish is a 201 or a clean 503 within seconds,
/readyz shows the outage, and no acknowledged event is lost or repeated."""

import pytest

from tests.failover_load import CHANNELS, FailoverLoad
from tests.redis_cluster_nodes import ClusterNodes
from tests.redis_sentinels import SentinelSet


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
