"""Fixtures: the app under WebTest, a live gevent server on a free port, Redis, browsers.

gevent's monkey-patching comes first, as in service.py, so the test client's
sockets and the server share one event loop in this process.
"""

from gevent import monkey

monkey.patch_all()

import collections  # noqa: E402
import dataclasses  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

import gevent.pool  # noqa: E402
import pytest  # noqa: E402
import webtest  # noqa: E402

import tests.hypothesis_profiles  # noqa: E402,F401  (profiles before any test module's settings)
from ssehub import direct  # noqa: E402
from ssehub import server as server_module  # noqa: E402
from ssehub.app import create_app  # noqa: E402
from ssehub.config import Config  # noqa: E402
from ssehub.server import wsgi_server  # noqa: E402
from tests.browser import Driver  # noqa: E402
from tests.redis_cluster_nodes import ClusterNodes  # noqa: E402
from tests.redis_sentinels import SentinelSet  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.sse import StreamReader  # noqa: E402

# Small heartbeats so idle streams notice departed clients quickly in tests.
TEST_CONFIG = Config(heartbeat_seconds=0.05, retry_ms=100)


def wait_for(condition, timeout: float = 5, interval: float = 0.01, message: str = "condition"):
    """Poll `condition` until it is truthy or the deadline passes (no bare sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


@pytest.fixture
def make_app():
    apps = []

    def make(broker=None, **settings):
        app = create_app(dataclasses.replace(TEST_CONFIG, **settings), broker)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.shutdown()
        app.close()


@pytest.fixture
def testapp(make_app):
    """WebTest client for responses that end, from a loopback address."""
    return webtest.TestApp(make_app(), extra_environ={"REMOTE_ADDR": "127.0.0.1"})


class HubClient:
    """Requests to a hub listening on 127.0.0.1:`port`, each on a connection of its own."""

    port: int

    def request_raw(
        self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None, timeout: float = 5
    ) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        payload = json.dumps(body) if body is not None and not isinstance(body, (str, bytes)) else body
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        content = response.read()
        connection.close()
        return response.status, content

    def request(
        self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None, timeout: float = 5
    ):
        """The status and the JSON answer (None when empty)."""
        status, content = self.request_raw(method, path, body, headers, timeout)
        return status, json.loads(content) if content else None

    def publish(self, channel: str, data: object, event: str | None = None) -> str:
        body = {"channel": channel, "data": data, **({"event": event} if event is not None else {})}
        status, reply = self.request("POST", "/publish", body)
        assert status == 201, reply
        return reply["id"]


class LiveServer(HubClient):
    """The app served by pywsgi on 127.0.0.1 and a free port, as in production."""

    def __init__(self, app, wrapper=None):
        self.app = app
        self.handlers = gevent.pool.Pool()
        application = wrapper(app) if wrapper else app
        self.server = wsgi_server(application, app.config, ("127.0.0.1", 0), spawn=self.handlers, log=None)
        self.server.start()
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.readers: list[StreamReader] = []

    def stream(
        self, query: str, headers: dict[str, str] | None = None, path: str = "/events", small_window: bool = False
    ) -> StreamReader:
        reader = StreamReader("127.0.0.1", self.port, f"{path}?{query}", headers, small_window=small_window)
        self.readers.append(reader)
        return reader

    def stop(self) -> None:
        for reader in self.readers:
            reader.close()
        self.app.shutdown()
        self.server.stop(timeout=2)


@pytest.fixture
def live(make_app):
    """Start a live server; call it with settings (and optionally a broker) first."""
    servers = []

    def start(broker=None, wrapper=None, **settings):
        server = LiveServer(make_app(broker, **settings), wrapper)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def driver():
    """One chromedriver for a module's browser tests."""
    running = Driver()
    yield running
    running.stop()


@pytest.fixture
def browsers(driver):
    """Open headless Chromium browsers, each given scripts to run before every page's own."""
    opened = []

    def open_browser(*before_page):
        browser = driver.browser()
        for source in before_page:
            browser.before_page_scripts(source)
        opened.append(browser)
        return browser

    yield open_browser
    for browser in opened:
        browser.quit()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One redis-server for the session; tests that break Redis use `own_redis`."""
    server = RedisServer(str(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()


@pytest.fixture
def clean_redis(redis_server):
    redis_server.flush()
    return redis_server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A Redis Cluster for the session: 3 primaries, 3 replicas. Tests that fail it over start their own."""
    cluster = ClusterNodes(str(tmp_path_factory.mktemp("cluster"))).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def clean_cluster(redis_cluster):
    redis_cluster.flush()
    return redis_cluster


@pytest.fixture(scope="session")
def redis_sentinels(tmp_path_factory):
    """A primary, its replica and three Sentinels for the session."""
    sentinels = SentinelSet(str(tmp_path_factory.mktemp("sentinels"))).start()
    yield sentinels
    sentinels.stop()


@pytest.fixture
def clean_sentinels(redis_sentinels):
    redis_sentinels.flush()
    return redis_sentinels


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own, with append-only persistence, to stop and restart."""
    server = RedisServer(str(tmp_path), appendonly=True).start()
    yield server
    server.stop()


@pytest.fixture
def writes(monkeypatch):
    """Counts of sends from the fan-out and of drains of a full socket."""
    counts = collections.Counter()
    send, drain = direct.DetachedStream.send, direct.DetachedStream._drain

    def counting_send(self, event):
        counts["direct"] += 1
        return send(self, event)

    def counting_drain(self, *pending):
        counts["drained"] += 1
        return drain(self, *pending)

    monkeypatch.setattr(direct.DetachedStream, "send", counting_send)
    monkeypatch.setattr(direct.DetachedStream, "_drain", counting_drain)
    return counts


@pytest.fixture
def small_send_buffers(monkeypatch):
    """The hub's sockets hold 16 KB unsent (not the megabytes loopback grows to),
    so a client that stops reading fills its socket within a few events."""
    handle = server_module.TimedHandler.handle

    def handle_with_a_small_buffer(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        return handle(self)

    monkeypatch.setattr(server_module.TimedHandler, "handle", handle_with_a_small_buffer)
