"""How many replicas a publish waits for (issue 13, item 3): the counting rules,
from the replies Redis and Sentinel give."""

from ssehub.brokers import redis_replicas
from ssehub.brokers.redis_replicas import PlainReplicas, by_primary, in_sync, promotable, real_replicas

REPLICA = {"ip": "10.0.0.2", "port": 6379, "state": "online", "offset": 100, "lag": 0}
BACKUP = {"ip": "10.0.0.9", "port": 0, "state": "wait_bgsave", "offset": 0, "lag": 0}  # redis-cli --rdb


def test_a_backup_client_is_no_replica_and_a_lagging_replica_is_not_in_sync():
    info = {
        "role": "master",
        "connected_slaves": 3,
        "slave0": REPLICA,
        "slave1": BACKUP,
        "slave2": {**REPLICA, "lag": 9},
    }
    assert real_replicas(info) == 2 and in_sync(info) == 1


def test_a_plain_urls_replica_is_waited_for_until_it_has_been_gone_a_while(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(redis_replicas.time, "monotonic", lambda: now[0])
    plain = PlainReplicas()
    assert plain.update({"slave0": REPLICA, "slave1": BACKUP}) == 1
    now[0] += 10
    assert plain.update({}) == 1  # gone: still waited for
    now[0] += redis_replicas.FORGET_SECONDS + 1
    assert plain.update({}) == 0  # gone for good
    assert plain.update({"slave0": REPLICA}) == 1


def test_sentinel_waits_only_for_replicas_it_may_promote():
    assert promotable([{"slave-priority": "100"}, {"slave-priority": "0"}, {"slave-priority": "1"}]) == 2


def test_a_clusters_replicas_are_counted_under_each_primarys_address_and_hostname():
    nodes = {
        "10.0.0.1:6379": {"node_id": "a", "flags": "master", "master_id": "-", "hostname": "redis-0"},
        "10.0.0.2:6379": {"node_id": "b", "flags": "slave", "master_id": "a", "hostname": "redis-1"},
        "10.0.0.3:6379": {"node_id": "c", "flags": "slave,fail", "master_id": "a", "hostname": ""},
        "10.0.0.4:6379": {"node_id": "d", "flags": "myself,master", "master_id": "-", "hostname": ""},
    }
    counts = by_primary(nodes)
    assert counts["10.0.0.1:6379"] == counts["redis-0:6379"] == 2 and counts["10.0.0.4:6379"] == 0
