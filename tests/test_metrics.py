"""Issue 14, item 6: /metrics for production, read with prometheus_client's parser."""

import http.client
import subprocess
import sys

import pytest

from tests.conftest import wait_for
from tests.prometheus import samples
from tests.redis_server import free_port
from tests.service_process import ROOT, Service

BIG = "x" * 60_000  # 20 of these to 6 streams: bytes written well past a million


def _scrape(server, path="/metrics", port=None):
    connection = http.client.HTTPConnection("127.0.0.1", port or server.port, timeout=5)
    connection.request("GET", path)
    reply = connection.getresponse()
    return reply.status, reply.headers["Content-Type"], reply.read()


def test_after_a_known_workload_every_figure_is_exact(live, writes, small_send_buffers):
    server = live(history_size=5, heartbeat_seconds=0.2)
    old = [server.publish("news", f"old {n}") for n in range(10)]
    readers = [server.stream("channel=news") for _ in range(3)]  # one channel: written by the fan-out itself
    readers.append(server.stream("channel=news&channel=other"))  # several: written by its greenlet
    readers.append(server.stream("channel=news", {"Last-Event-ID": old[-1]}))  # resumed exactly
    readers.append(server.stream("channel=news", {"Last-Event-ID": old[0]}))  # fell out of the 5 kept: reset
    wait_for(lambda: server.app.hub.subscriber_count == 6, message="6 streams")
    # The polyfill's transport: a poll whose id fell out of history is a reset; one that
    # carries a current id is no resume (every poll carries one).
    reset_poll = server.stream(f"channel=news&ssehub_poll=1&lastEventId={old[0]}").read_to_end()
    quiet = server.publish("quiet", "before the poll")
    current_poll = server.stream(f"channel=quiet&ssehub_poll=1&lastEventId={quiet}")  # holds: nothing new
    polled = server.stream("channel=polled&ssehub_poll=1")
    polled.read_until(lambda r: b"ssehub.position" in r.raw)
    wait_for(lambda: server.app.hub.subscriber_count == 8, message="the long polls waiting")

    # Small events go whole into the sockets; big ones fill them (8 KB send buffers),
    # so a greenlet drains the rest: both of a detached stream's ways to write.
    live_events = [server.publish("news", f"small {n}") for n in range(20)] + [
        server.publish("news", BIG) for _ in range(20)
    ]
    server.publish("polled", "to the long poll")
    once = {"Idempotency-Key": "order-17"}
    assert server.request("POST", "/publish", {"channel": "elsewhere", "data": "a"}, once)[0] == 201
    assert server.request("POST", "/publish", {"channel": "elsewhere", "data": "a"}, once)[0] == 201  # a repeat
    assert server.request("POST", "/publish", {"channel": "elsewhere", "data": "b"}, once)[0] == 422
    assert server.request("POST", "/publish", {"channel": "bad name!", "data": "a"})[0] == 400
    for reader in readers:
        reader.read_until(lambda r: [m.data for m in r.messages].count(BIG) == 20)
    polled.read_to_end()
    wait_for(lambda: server.app.hub.subscriber_count == 7, message="the answered long poll to end")
    assert writes["direct"] and writes["drained"]

    status, content_type, text = _scrape(server)
    figures = samples(text)
    assert status == 200 and content_type.startswith("text/plain; version=")
    assert figures["ssehub_published_total"] == 10 + 1 + 40 + 1 + 1  # not the repeat
    assert {outcome: figures[f'ssehub_publishes_total{{outcome="{outcome}"}}'] for outcome in
            ("ok", "duplicate_key", "refused", "broker_unavailable")} == {
        "ok": 53, "duplicate_key": 1, "refused": 2, "broker_unavailable": 0}  # fmt: skip
    assert figures['ssehub_streams_opened_total{transport="stream"}'] == 6
    assert figures['ssehub_streams_opened_total{transport="long-poll"}'] == 3
    assert figures['ssehub_resumes_total{result="exact"}'] == 1
    assert figures['ssehub_resumes_total{result="reset"}'] == 2
    deliveries = 6 * len(live_events) + 1
    assert figures["ssehub_deliveries_total"] == deliveries
    assert figures["ssehub_subscribers"] == 7 and figures["ssehub_channels"] == 3
    assert figures["ssehub_evictions_total"] == 0 and figures["ssehub_streams_refused_total"] == 0
    # Every live event written is timed once (not the 5 replayed to the reset stream).
    assert figures["ssehub_delivery_seconds_count"] == deliveries
    buckets = [value for name, value in figures.items() if name.startswith("ssehub_delivery_seconds_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == deliveries
    assert 0 < figures["ssehub_delivery_seconds_sum"] < deliveries * 5
    # prometheus_client's own process series: open files against the limit, memory, CPU.
    assert 7 < figures["process_open_fds"] < figures["process_max_fds"]
    assert figures["process_resident_memory_bytes"] > 10e6 and figures["process_cpu_seconds_total"] > 0

    # Once every stream has ended, bytes written are what the clients read, to the byte,
    # heartbeats and endings included, and exact past a million (%g would keep 6 digits).
    server.app.shutdown()
    for reader in (*readers, current_poll):
        reader.read_to_end()
    written = sum(len(reader.raw) for reader in (*readers, polled, reset_poll, current_poll))
    assert written > 6 * 20 * len(BIG) > 1e6
    assert samples(_scrape(server)[2])["ssehub_written_bytes_total"] == written


def test_an_accept_header_it_cannot_parse_gets_the_plain_text_format(live):
    server = live()
    for accept in ("application/openmetrics-text; version=abc", "application/openmetrics-text; version=1.x.0"):
        status, reply = server.request_raw("GET", "/metrics", headers={"Accept": accept})
        assert status == 200 and "ssehub_published_total 0.0" in reply.decode()


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(live):
    server = live()
    server.publish("news", "x")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    reply = connection.getresponse()
    text = reply.read().decode()
    assert reply.headers["Content-Type"].startswith("application/openmetrics-text")
    assert "ssehub_published_total 1.0" in text and text.endswith("# EOF\n")


def test_publishes_with_redis_count_repeats_and_outages(live, own_redis):
    server = live(redis_url=own_redis.url)
    once = {"Idempotency-Key": "order-17"}
    for _ in range(3):
        assert server.request("POST", "/publish", {"channel": "news", "data": "a"}, once)[0] == 201
    own_redis.kill()
    assert server.request("POST", "/publish", {"channel": "news", "data": "b"})[0] == 503
    figures = samples(_scrape(server)[2])
    assert figures["ssehub_published_total"] == 1
    assert figures['ssehub_publishes_total{outcome="ok"}'] == 1
    assert figures['ssehub_publishes_total{outcome="duplicate_key"}'] == 2
    assert figures['ssehub_publishes_total{outcome="broker_unavailable"}'] == 1
    assert figures["ssehub_broker_up"] == 0


@pytest.fixture
def metrics_port_hub():
    hub = Service(env={"METRICS_PORT": str(free_port())})
    hub.wait_listening()
    yield hub
    hub.stop()


def test_with_metrics_port_metrics_leave_the_public_port(metrics_port_hub):
    hub = metrics_port_hub
    metrics_port = int(hub.output().split("metrics on http://127.0.0.1:")[1].split("/")[0])
    hub.publish("news", "x")
    status, _, body = _scrape(hub)
    assert status == 404 and b"no such endpoint" in body
    connection = http.client.HTTPConnection("127.0.0.1", metrics_port, timeout=5)
    connection.request("GET", "/metrics", headers={"X-Request-ID": "scrape-1"})
    reply = connection.getresponse()
    assert reply.status == 200 and reply.headers["X-Request-ID"] == "scrape-1"
    assert samples(reply.read())["ssehub_published_total"] == 1
    status, _, body = _scrape(hub, "/events?channel=news", port=metrics_port)
    assert status == 404 and b"this port serves GET /metrics" in body


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        ({"PORT": "5500", "METRICS_PORT": "5500"}, "ssehub: METRICS_PORT=5500 is PORT too"),
        ({"METRICS_PORT": "70000"}, "ssehub: METRICS_PORT=70000 is out of range; use 1 to 65535"),
    ],
)
def test_a_bad_metrics_port_stops_the_start_with_one_line(settings, line):
    env = {"PATH": "/usr/bin:/bin", "PORT": str(free_port()), **settings}
    finished = subprocess.run([sys.executable, "service.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert finished.returncode == 2 and finished.stderr.startswith(line) and finished.stderr.count("\n") == 1


def test_a_metrics_port_in_use_stops_the_start_naming_it():
    holder = Service()
    holder.wait_listening()
    try:
        env = {"PATH": "/usr/bin:/bin", "HOST": "127.0.0.1", "PORT": str(free_port()), "METRICS_PORT": str(holder.port)}
        finished = subprocess.run([sys.executable, "service.py"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert finished.returncode == 2
        assert f"ssehub: METRICS_PORT={holder.port} is in use" in finished.stderr
    finally:
        holder.stop()
