"""Issue 14, item 5: gunicorn -c gunicorn.conf.py service:app, two gevent workers on Redis."""

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import HubClient, wait_for
from tests.prometheus import samples
from tests.redis_server import free_port
from tests.service_process import ROOT
from tests.sse import StreamReader

GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")


class Gunicorn(HubClient):
    """`gunicorn -c gunicorn.conf.py service:app`: two gevent workers on Redis, its log kept."""

    def __init__(self, tmp_path, redis_url: str, **settings: str):
        self.port = free_port()
        env = {
            "PATH": os.environ["PATH"], "HOST": "127.0.0.1", "PORT": str(self.port), "WEB_CONCURRENCY": "2",
            "REDIS_URL": redis_url, "HEARTBEAT_SECONDS": "1", **settings,
        }  # fmt: skip
        self.log = open(tmp_path / "gunicorn.log", "w+")
        command = [GUNICORN, "-c", "gunicorn.conf.py", "--control-socket", str(tmp_path / "ctl"), "service:app"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        with open(self.log.name) as log:
            return log.read()

    def wait_workers(self, count: int) -> None:
        """Until `count` workers have started a hub (each logs its Redis mode once)."""
        wait_for(lambda: self.output().count("Redis mode") == count, timeout=20, message=f"{count} workers")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.log.close()


def test_two_gevent_workers_serve_log_as_the_hub_does_and_end_every_stream_on_sigterm(clean_redis, tmp_path):
    metrics_port = free_port()
    hub = Gunicorn(tmp_path, clean_redis.url, LOG_FORMAT="json", ACCESS_LOG="1", METRICS_PORT=str(metrics_port))
    metrics = HubClient()
    metrics.port = metrics_port
    try:
        hub.wait_workers(2)
        readers = [StreamReader("127.0.0.1", hub.port, "/events?channel=news") for _ in range(20)]
        for reader in readers:
            reader.read_until(lambda r: r.parser.last_event_id)
        sent = [hub.publish("news", f"to every worker's streams {n}") for n in range(10)]
        for reader in readers:
            assert [m.last_event_id for m in reader.take(10)] == sent
        # Both workers' figures as one, whichever answers; /metrics is off the public port.
        assert hub.request_raw("GET", "/metrics")[0] == 404
        for _ in range(5):  # a new connection each: either worker answers
            # Another worker's row is up to a second old: wait until both have recorded it all.
            figures = wait_for(
                lambda: (
                    (figures := samples(metrics.request_raw("GET", "/metrics")[1]))["ssehub_deliveries_total"] == 200
                    and figures["ssehub_subscribers"] == 20
                    and figures
                ),
                message="both workers' figures",
            )
            subscribers = [value for name, value in figures.items() if name.startswith("ssehub_worker_subscribers{")]
            assert figures["ssehub_workers"] == 2 and len(subscribers) == 2 and sum(subscribers) == 20
            assert figures["ssehub_published_total"] == 10
            assert len([name for name in figures if name.startswith("process_open_fds{")]) == 2
        signalled = time.monotonic()
        hub.process.send_signal(signal.SIGTERM)
        for reader in readers:
            reader.read_until(lambda r: r.ended, timeout=5)  # a clean end, not a cut
        assert hub.process.wait(timeout=5) == 0 and time.monotonic() - signalled < 5
        lines = [json.loads(line) for line in hub.output().splitlines()]
        loggers = {line["logger"] for line in lines}
        assert {"ssehub", "ssehub.access", "gunicorn.error"} <= loggers
        published = [line for line in lines if line["logger"] == "ssehub.access" and line.get("method") == "POST"]
        assert published[0]["status"] == 201 and len(published[0]["request_id"]) == 32
        assert not any("Traceback" in line["message"] or line["level"] == "ERROR" for line in lines)
    finally:
        hub.stop()


def test_several_workers_without_redis_stop_the_start_with_one_line(tmp_path):
    env = {"PATH": os.environ["PATH"], "PORT": str(free_port()), "WEB_CONCURRENCY": "2"}
    command = [GUNICORN, "-c", "gunicorn.conf.py", "--control-socket", str(tmp_path / "ctl"), "service:app"]
    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=20)
    assert finished.returncode != 0
    assert "ssehub: 2 gunicorn workers need REDIS_URL" in finished.stderr + finished.stdout


def test_a_killed_gunicorn_worker_keeps_its_counts_in_the_totals(clean_redis, tmp_path):
    hub = Gunicorn(tmp_path, clean_redis.url)
    try:
        hub.wait_workers(2)
        readers = [StreamReader("127.0.0.1", hub.port, "/events?channel=news") for _ in range(10)]
        for reader in readers:
            reader.read_until(lambda r: r.parser.last_event_id)
        for n in range(10):
            hub.publish("news", f"event {n}")
        for reader in readers:
            reader.take(10)
        wait_for(lambda: _figures(hub)["ssehub_deliveries_total"] == 100, message="both workers' counts")
        before = _figures(hub)
        with open(f"/proc/{hub.process.pid}/task/{hub.process.pid}/children") as children:
            first = int(children.read().split()[0])
        os.kill(first, signal.SIGKILL)
        hub.wait_workers(3)  # the two, and the one replacing the killed one
        wait_for(lambda: _figures(hub)["ssehub_workers"] == 2, message="the new worker's row")
        for _ in range(10):  # whichever worker answers, while the new one takes the row
            after = _figures(hub)
            assert after["ssehub_published_total"] == 10 and after["ssehub_deliveries_total"] == 100
            assert after["ssehub_delivery_seconds_count"] == before["ssehub_delivery_seconds_count"] == 100
            assert after["ssehub_workers"] == 2
        hub.publish("news", "after")
        wait_for(lambda: _figures(hub)["ssehub_published_total"] == 11, message="the count after")
    finally:
        hub.stop()


def _figures(hub):
    return samples(hub.request_raw("GET", "/metrics")[1])
