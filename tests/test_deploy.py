"""Issue 14, item 8: the README's nginx snippet, run as written, carries a hub's streams."""

import ipaddress
import os
import re

import pytest

from tests.conftest import HubClient
from tests.nginx import Nginx
from tests.service_process import ROOT
from tests.sse import StreamReader


def readme_snippet() -> str:
    with open(os.path.join(ROOT, "README.md")) as readme:
        [snippet] = re.findall(r"```nginx\n(.*?)```", readme.read(), re.DOTALL)
    return snippet


@pytest.fixture
def proxied(live, tmp_path):
    trusted = (ipaddress.ip_network("127.0.0.1/32"),)  # TRUSTED_PROXIES=127.0.0.1, as the README says
    server = live(publish_token="the-token", trusted_proxies=trusted, heartbeat_seconds=0.5)
    proxy = Nginx(
        str(tmp_path), server.port, location=readme_snippet().replace("127.0.0.1:5000", "127.0.0.1:{upstream}")
    )
    yield server, proxy
    proxy.stop()


def test_the_readme_nginx_snippet_streams_events_and_heartbeats_at_once(proxied):
    server, proxy = proxied
    reader = StreamReader("127.0.0.1", proxy.port, "/events?channel=news")
    reader.read_until(lambda r: r.parser.last_event_id)
    assert len(reader.headers["X-Request-ID"]) == 32  # nginx's $request_id, passed on and returned
    through = HubClient()
    through.port = proxy.port
    status, reply = through.request(
        "POST", "/publish", {"channel": "news", "data": "through nginx"}, {"Authorization": "Bearer the-token"}
    )
    assert status == 201
    sent = reply["id"]
    assert [(m.data, m.last_event_id) for m in reader.take(1, timeout=2)] == [("through nginx", sent)]
    heartbeats = reader.raw.count(b":\n\n")
    reader.read_until(lambda r: r.raw.count(b":\n\n") >= heartbeats + 2, timeout=3)  # unbuffered
    reader.close()
