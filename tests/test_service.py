"""`python service.py` as a process: start, settings, signals."""

import os
import resource
import signal
import socket
import subprocess
import sys

import pytest

from tests.conftest import wait_for
from tests.redis_server import free_port
from tests.service_process import ROOT, Service
from tests.sse import StreamReader
from tests.tokens import SECRET, mint


@pytest.fixture
def service():
    started = []

    def start(**kwargs):
        started.append(Service(**kwargs))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def test_service_logs_its_address_broker_and_the_token_warning(service):
    running = service()
    running.wait_listening()
    # The start-up lines follow "listening on"; the last one says the log is complete.
    log = wait_for(lambda: "SECRET_KEY is unset" in running.output() and running.output(), message="start-up lines")
    assert f"listening on http://127.0.0.1:{running.port}" in log
    assert "broker: embedded in-memory" in log
    assert "PUBLISH_TOKEN is unset" in log
    assert "SECRET_KEY is unset" in log


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_open_streams_and_exits_zero(service, signum):
    running = service(env={"HEARTBEAT_SECONDS": "30"})
    running.wait_listening()
    reader = StreamReader("127.0.0.1", running.port, "/events?channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    running.process.send_signal(signum)
    reader.read_to_end(timeout=5)
    assert running.process.wait(timeout=10) == 0
    assert "Traceback" not in running.output()


@pytest.mark.parametrize(
    "name, value",
    [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("HISTORY_SIZE", "0"),
        ("HEARTBEAT_SECONDS", "-1"),
        ("RETRY_MS", "soon"),
        ("MAX_EVENT_BYTES", "1e9"),
        ("CLIENT_QUEUE", "0"),
        ("REDIS_URL", "http://localhost"),
        ("ALLOWED_ORIGINS", "example.com"),
        ("PUBLISH_TOKEN", "s3cret-token\n"),
        ("PUBLISH_TOKEN", "   "),
        ("TRUSTED_PROXIES", "the-router"),
        ("HOST", "no-such-host.invalid"),
        ("HOST", "192.0.2.1"),
        ("PORT", "in use"),
        ("WEB_CONCURRENCY", "2"),  # the embedded broker: workers would not see each other's events
        ("WEB_CONCURRENCY", "many"),
        ("ACCESS_LOG", "maybe"),
        ("JWT_SECRET", "shorter-than-32-bytes"),
        ("JWT_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----\\nnot base64\\n-----END PUBLIC KEY-----"),
        ("PUBLIC_CHANNELS", "news"),  # no key: no token could be verified
    ],
)
def test_a_bad_setting_stops_the_start_with_one_line_naming_it(name, value):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        if value == "in use":
            env = {"HOST": "127.0.0.1", "PORT": str(taken.getsockname()[1])}
        else:
            env = {"HOST": "127.0.0.1", "PORT": str(free_port()), name: value}
        result = _run_service(env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ssehub: {name}"), result.stderr


def _run_service(env):
    return subprocess.run(
        [sys.executable, "service.py"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_low_open_file_limit_is_raised_or_reported(service):
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 1024))

    running = service(preexec_fn=low_limit)
    running.wait_listening()
    assert "open-file limit is 1024: at most about 960 concurrent subscribers" in running.output()


def test_service_app_is_importable_for_other_wsgi_servers():
    result = subprocess.run(
        [sys.executable, "-c", "import service; print(type(service.app).__name__)"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.stdout.strip() == "SSEHubApp", result.stderr


def test_the_app_refuses_to_run_without_gevent_patching():
    code = "from ssehub.app import create_app; from ssehub.config import Config; create_app(Config())"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert "gunicorn -k gevent" in result.stderr


def test_clients_hanging_up_leave_no_traceback_in_the_log(service):
    running = service(env={"HEARTBEAT_SECONDS": "0.05", "ACCESS_LOG": "1"})
    running.wait_listening()
    for abrupt in (True, False, True):
        reader = StreamReader("127.0.0.1", running.port, "/events?channel=news")
        reader.read_until(lambda r: r.parser.last_event_id)
        reader.close(abrupt=abrupt)
    wait_for(lambda: running.output().count('"GET /events?channel=news" 200') == 3, message="streams logged")
    assert "Traceback" not in running.output() and "ERROR" not in running.output()


def test_requests_are_not_logged_one_line_each_unless_asked(service):
    running = service()
    running.wait_listening()
    for _ in range(3):
        assert running.request("GET", "/healthz")[0] == 200
    assert running.request("POST", "/publish", "{")[0] == 400
    # Refusals are still told (one line each); successes are not.
    wait_for(lambda: "POST /publish from 127.0.0.1" in running.output(), message="the refusal logged")
    assert "GET /healthz" not in running.output()


def test_two_hub_processes_share_a_redis(service, redis_server):
    env = {"REDIS_URL": redis_server.url, "HEARTBEAT_SECONDS": "1"}
    hub_a, hub_b = service(env=env), service(env=env)
    hub_a.wait_listening()
    hub_b.wait_listening()
    reader = StreamReader("127.0.0.1", hub_a.port, "/events?channel=between")
    reader.read_until(lambda r: r.parser.last_event_id)
    ids = [hub_b.publish("between", f"via b {n}") for n in range(10)]
    assert [(m.data, m.last_event_id) for m in reader.take(10)] == [(f"via b {n}", ids[n]) for n in range(10)]
    reader.close()
    moved = StreamReader("127.0.0.1", hub_b.port, "/events?channel=between", {"Last-Event-ID": ids[4]})
    assert [m.data for m in moved.take(5)] == [f"via b {n}" for n in range(5, 10)]
    moved.close()


def test_tokens_never_reach_a_log_line(service):
    """Every request logged (ACCESS_LOG=1), with the token in the URL: streams,
    refusals of each kind, a request line too long for the server, a bad request."""
    running = service(env={"JWT_SECRET": SECRET, "ACCESS_LOG": "1", "PUBLIC_CHANNELS": "news"})
    running.wait_listening()
    good, other = mint(["user.42"]), mint(["user.43"])
    tokens = [good, other, mint(["user.42"], lifetime=-60), mint(["user.42"], key="w" * 40)]
    for token in tokens:
        running.request_raw("GET", f"/events?channel=user.42&ssehub_poll=1&lastEventId=0-0&token={token}")
    stream = StreamReader("127.0.0.1", running.port, f"/events?channel=user.42&token={good}&channel=user.42")
    stream.read_until(lambda reader: reader.parser.last_event_id != "")
    stream.close()
    long_token = mint(["user.42"], padding="p" * 9000)
    tokens.append(long_token)
    assert running.request_raw("GET", f"/events?channel=user.42&token={long_token}")[0] == 414
    assert running.request_raw("GET", f"/events?channel=bad%20name&token={good}")[0] == 400
    assert running.request_raw("GET", f"/nowhere?token={good}")[0] == 404
    wait_for(lambda: running.output().count("/events?") >= 6, message="the access log lines")
    log = running.output()
    assert "token=[redacted]" in log
    for token in tokens:
        for part in token.split("."):
            assert part not in log
