"""WEB_CONCURRENCY: worker processes sharing one port through Redis (issue 12, item 6)."""

import os
import signal

import pytest

from tests.conftest import HubClient, wait_for
from tests.prometheus import samples
from tests.redis_server import free_port
from tests.service_process import Service
from tests.sse import StreamReader

STREAMS = 24


@pytest.fixture
def workers(clean_redis):
    hub = Service(
        env={
            "REDIS_URL": clean_redis.url,
            "WEB_CONCURRENCY": "2",
            "HEARTBEAT_SECONDS": "1",
            "MAX_STREAMS_PER_CLIENT": "0",
        }
    )
    wait_for(lambda: hub.output().count("listening on") == 2 or hub.process.poll() is not None, timeout=20)
    assert hub.output().count("listening on") == 2, hub.output()
    yield hub
    hub.stop()


def _metrics(hub):
    _, text = hub.request_raw("GET", "/metrics")
    return samples(text)


def _worker_subscribers(hub):
    return [value for name, value in _metrics(hub).items() if name.startswith("ssehub_worker_subscribers{")]


def test_two_workers_share_the_port_serve_streams_and_see_each_others_events(workers):
    readers = [StreamReader("127.0.0.1", workers.port, "/events?channel=shared") for _ in range(STREAMS)]
    for reader in readers:
        reader.read_until(lambda r: r.parser.last_event_id)
    # The kernel spreads connections over both workers; /metrics, from either, counts both.
    counts = wait_for(
        lambda: (counts := _worker_subscribers(workers)) and sum(counts) == STREAMS and counts,
        message="both workers' rows in /metrics",
    )
    assert len(counts) == 2 and min(counts) > 0, counts
    # Each publish is a new connection, so they land on both workers too.
    ids = [workers.publish("shared", f"event {n}") for n in range(10)]
    for reader in readers:
        assert [(m.data, m.last_event_id) for m in reader.take(10)] == [(f"event {n}", ids[n]) for n in range(10)]
    # Another worker's row is up to a second old: wait until both have recorded it all.
    metrics = wait_for(
        lambda: (metrics := _metrics(workers))["ssehub_deliveries_total"] == 10 * STREAMS and metrics,
        message="both workers' figures in /metrics",
    )
    assert metrics['ssehub_publishes_total{outcome="ok"}'] == 10
    assert metrics["ssehub_workers"] == 2 and metrics["ssehub_broker_up"] == 1
    assert metrics['ssehub_streams_opened_total{transport="stream"}'] == STREAMS
    assert metrics["ssehub_deliveries_total"] == metrics["ssehub_delivery_seconds_count"] == 10 * STREAMS
    # prometheus_client's process series, for each worker: open files are per process.
    open_files = {name: value for name, value in metrics.items() if name.startswith("process_open_fds")}
    assert set(open_files) == {'process_open_fds{worker="0"}', 'process_open_fds{worker="1"}'}
    assert all(value > 10 for value in open_files.values()), open_files

    workers.process.send_signal(signal.SIGTERM)
    for reader in readers:
        reader.read_to_end()  # every worker ended its streams
    assert workers.process.wait(timeout=15) == 0
    assert workers.output().count("SIGTERM: closing streams and stopping") == 2


def _worker_pids(hub):
    with open(f"/proc/{hub.process.pid}/task/{hub.process.pid}/children") as children:
        return [int(pid) for pid in children.read().split()]


def _published_total(hub):
    return _metrics(hub)["ssehub_published_total"]


def _counts(figures):
    """The series that only ever go up: counters and the histogram."""
    return {name: value for name, value in figures.items() if name.startswith("ssehub_") and "_total" in name} | {
        name: value for name, value in figures.items() if name.startswith("ssehub_delivery_seconds")
    }


def test_a_worker_that_dies_is_replaced_and_its_counts_are_kept(workers):
    readers = [StreamReader("127.0.0.1", workers.port, "/events?channel=shared") for _ in range(8)]
    for reader in readers:
        reader.read_until(lambda r: r.parser.last_event_id)
    for n in range(10):
        workers.publish("shared", f"before {n}")  # a new connection each: both workers publish some
    for reader in readers:
        reader.take(10)
    wait_for(lambda: _metrics(workers)["ssehub_deliveries_total"] == 80, message="both workers' counts in /metrics")
    before = _counts(_metrics(workers))
    first, second = _worker_pids(workers)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: workers.output().count("listening on") == 3, message="a replacement worker")
    assert "exited with -9; starting another" in workers.output()
    assert second in _worker_pids(workers) and first not in _worker_pids(workers)
    # A counter never goes back, on whichever worker answers, while the new one takes the row.
    for _ in range(10):
        after = _counts(_metrics(workers))
        assert all(after[name] >= count for name, count in before.items()), (before, after)
    assert after["ssehub_published_total"] == 10 and after["ssehub_delivery_seconds_count"] == 80
    readers = [StreamReader("127.0.0.1", workers.port, "/events?channel=shared") for _ in range(8)]
    for reader in readers:
        reader.read_until(lambda r: r.parser.last_event_id)
    published = workers.publish("shared", "after the replacement")
    for reader in readers:
        assert [(m.data, m.last_event_id) for m in reader.take(1)] == [("after the replacement", published)]
        reader.close()
    wait_for(lambda: _metrics(workers)["ssehub_published_total"] == 11, message="the new worker's count added")


def test_with_metrics_port_every_worker_serves_the_whole_there_and_not_on_port(clean_redis):
    metrics_port = free_port()
    hub = Service(env={"REDIS_URL": clean_redis.url, "WEB_CONCURRENCY": "2", "METRICS_PORT": str(metrics_port)})
    try:
        wait_for(lambda: hub.output().count("listening on") == 2, timeout=20, message="both workers")
        readers = [StreamReader("127.0.0.1", hub.port, "/events?channel=shared") for _ in range(8)]
        for reader in readers:
            reader.read_until(lambda r: r.parser.last_event_id)
        assert hub.request_raw("GET", "/metrics")[0] == 404
        scraper = HubClient()
        scraper.port = metrics_port
        for _ in range(5):  # a new connection each: either worker answers
            figures = wait_for(
                lambda: (
                    (figures := samples(scraper.request_raw("GET", "/metrics")[1]))["ssehub_subscribers"] == 8
                    and figures
                ),
                message="both workers' streams",
            )
            assert figures["ssehub_workers"] == 2
    finally:
        hub.stop()


def test_workers_end_when_their_supervisor_is_killed(workers):
    pids = _worker_pids(workers)
    workers.process.kill()  # SIGKILL: it cannot pass anything on
    workers.process.wait(timeout=5)

    def gone(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"  # exited, waiting to be reaped

    wait_for(lambda: all(gone(pid) for pid in pids), timeout=15, message="the orphaned workers to exit")


def test_a_worker_that_stops_records_its_last_counts_as_it_goes(workers):
    """Rows are written every second; a worker stopping within that second records once more."""
    first, _ = _worker_pids(workers)
    for n in range(20):
        workers.publish("shared", f"just before {n}")  # a new connection each: both workers publish some
    os.kill(first, signal.SIGTERM)
    wait_for(lambda: workers.output().count("listening on") == 3, message="a replacement worker")
    wait_for(lambda: _published_total(workers) == 20, message="all 20, the stopped worker's too")
