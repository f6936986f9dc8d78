"""A hub behind a real nginx, and requests forged as a hostile page would (issue 9, items 1-2)."""

import http.client
import ipaddress
import json

import pytest
import webtest

from tests.nginx import Nginx
from tests.sse import Parser

PUBLISH = {"channel": "news", "data": "x"}


def request(port, method, path, body=None, headers=None, source="127.0.0.1"):
    """One request from the loopback address `source`, as a distinct client would send it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    payload = json.dumps(body) if body is not None else None
    connection.request(method, path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    content = response.read()
    connection.close()
    return response, content


@pytest.fixture
def nginx(tmp_path):
    started = []

    def start(upstream_port, **options):
        directory = tmp_path / f"nginx{len(started)}"
        directory.mkdir()
        started.append(Nginx(str(directory), upstream_port, **options))
        return started[-1]

    yield start
    for proxy in started:
        proxy.stop()


def test_without_a_token_a_publish_through_a_proxy_on_the_same_machine_is_refused(live, nginx):
    server = live()
    proxy = nginx(server.port)
    response, content = request(proxy.port, "POST", "/publish", PUBLISH, source="127.0.0.5")
    assert response.status == 403
    assert "came through a proxy" in json.loads(content)["error"]
    direct, _ = request(server.port, "POST", "/publish", PUBLISH)
    assert direct.status == 201


def test_with_a_token_a_publish_through_a_proxy_is_accepted(live, nginx):
    server = live(publish_token="a-long-publish-token")
    proxy = nginx(server.port)
    response, _ = request(proxy.port, "POST", "/publish", PUBLISH, {"Authorization": "Bearer a-long-publish-token"})
    assert response.status == 201


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Host": "evil.example:5000"},  # DNS rebinding: a page that resolves its own name to 127.0.0.1
        {"X-Forwarded-For": "203.0.113.9"},
        {"Forwarded": "for=203.0.113.9"},
    ],
)
def test_without_a_token_a_cross_site_or_forwarded_request_never_publishes(testapp, headers):
    form = testapp.post("/publish", PUBLISH, headers=headers, status=403)
    assert "set PUBLISH_TOKEN" in form.json["error"]
    testapp.post_json("/publish", PUBLISH, headers=headers, status=403)


def test_without_a_token_a_local_program_and_the_hubs_own_page_still_publish(testapp):
    testapp.post_json("/publish", PUBLISH, status=201)
    testapp.post_json("/publish", PUBLISH, headers={"Origin": "http://localhost"}, status=201)
    testapp.post_json("/publish", PUBLISH, headers={"Sec-Fetch-Site": "same-origin"}, status=201)


def test_forwarding_headers_are_believed_only_from_trusted_proxies(make_app):
    """The tokenless refusal names the address the hub believes."""
    app = make_app(trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    forged = {"X-Forwarded-For": "198.51.100.7"}
    from_proxy = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "10.1.2.3"})
    assert (
        "came from 198.51.100.7" in from_proxy.post_json("/publish", PUBLISH, headers=forged, status=403).json["error"]
    )
    from_elsewhere = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "192.0.2.1"})
    assert (
        "came from 192.0.2.1" in from_elsewhere.post_json("/publish", PUBLISH, headers=forged, status=403).json["error"]
    )


def stream_from(port, source):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    connection.request("GET", "/events?channel=news")
    response = connection.getresponse()
    parser = Parser()
    parser.feed(response.read1(65536))
    return connection, response, parser


def test_behind_a_trusted_proxy_stream_limits_count_each_real_client(live, nginx):
    server = live(trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),), max_streams_per_client=2)
    proxy = nginx(server.port)
    held = [stream_from(proxy.port, "127.0.0.5") for _ in range(2)]
    _, refused, parser = stream_from(proxy.port, "127.0.0.5")
    assert refused.status == 200 and parser.retry == 10_000
    assert "this address has 2 streams open already" in parser.comments[0]
    _, other, other_parser = stream_from(proxy.port, "127.0.0.6")  # another client behind the same proxy
    assert other.status == 200 and other_parser.retry == server.app.config.retry_ms
    for connection, _, _ in held:
        connection.close()


def test_behind_a_proxy_that_ends_tls_the_chat_cookie_is_secure(live, nginx):
    server = live(trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    proxy = nginx(server.port, scheme="https")
    response, _ = request(proxy.port, "POST", "/chat/name", {"name": "Ada"})
    assert response.status == 200
    assert "Secure" in response.getheader("Set-Cookie")
    untrusted = nginx(live().port, scheme="https")
    response, _ = request(untrusted.port, "POST", "/chat/name", {"name": "Ada"})
    assert "Secure" not in response.getheader("Set-Cookie")
