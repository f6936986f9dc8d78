"""Input built to break the hub gets a 4xx saying what to fix, never a 500 (issue 9, item 4).

Deep JSON, unreadable cookies, folded Origin headers, oversized chunked
bodies and ambiguous framing; the raw-socket tests go through a live pywsgi
server, because only it sees the bytes as a client sent them.
"""

import json
import socket

import pytest
import webtest
from hypothesis import given
from hypothesis import strategies as st

from ssehub.bodies import MAX_JSON_DEPTH, nesting_depth

HUB = "http://localhost"  # the hub's own origin under WebTest


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def exchange(port: int, raw: bytes) -> bytes:
    """Send raw request bytes; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(raw)
        received = []
        while chunk := connection.recv(65536):
            received.append(chunk)
    return b"".join(received)


def status_and_json(response: bytes) -> tuple[int, object]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def webtest_app(app):
    return webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})


def chunked(body: bytes, size: int = 8192) -> bytes:
    pieces = (body[start : start + size] for start in range(0, len(body), size))
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


@pytest.mark.parametrize(
    "body", [nested(20_000), f'{{"channel": "news", "data": {nested(20_000)}}}'], ids=["whole body", "inside data"]
)
def test_json_nested_20000_deep_is_refused_on_publish(testapp, body):
    reply = testapp.post("/publish", body, content_type="application/json", status=400)
    assert f"nested more than {MAX_JSON_DEPTH} levels" in reply.json["error"]


def test_json_nested_to_the_limit_is_published_and_one_level_more_is_refused(testapp):
    def event(data_depth):
        return f'{{"channel": "news", "data": {nested(data_depth)}}}'

    testapp.post("/publish", event(MAX_JSON_DEPTH - 1), content_type="application/json", status=201)
    testapp.post("/publish", event(MAX_JSON_DEPTH), content_type="application/json", status=400)


def test_brackets_inside_json_strings_do_not_count_as_nesting(testapp):
    data = '[{"\\"[' * 100
    testapp.post_json("/publish", {"channel": "news", "data": data}, status=201)


# Strings full of what the depth count must skip: brackets, quotes, backslashes.
tricky_text = st.text(st.sampled_from('[]{}"\\/,: au\u00e9\u2028'), max_size=8)
json_trees = st.recursive(
    st.none() | st.integers() | tricky_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3),
    max_leaves=20,
)


def depth(value) -> int:
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    return 0 if children is None else 1 + max(map(depth, children), default=0)


@given(value=json_trees, ensure_ascii=st.booleans(), indent=st.sampled_from([None, 1]))
def test_nesting_depth_counts_levels_and_never_brackets_inside_strings(value, ensure_ascii, indent):
    assert nesting_depth(json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)) == depth(value)


# 8,000 levels fit in a chat body (16 KiB) and are far past Python's recursion limit.
@pytest.mark.parametrize("path", ["/chat/name", "/chat/messages", "/widget/messages"])
def test_json_nested_8000_deep_is_refused_on_chat(testapp, path):
    testapp.post_json("/chat/name", {"name": "Ada"})
    reply = testapp.post(path, nested(8000), content_type="application/json", headers={"Origin": HUB}, status=400)
    assert reply.json["error"].startswith("send a JSON object")


# The cookie as a client sent it: raw UTF-8 bytes (read as latin-1) or octal escapes in a quoted value.
UNREADABLE_COOKIES = ['ssehub_chat_name="\xc3\xa9.x"', r'ssehub_chat_name="\303\251.x"']


@pytest.mark.parametrize("cookie", UNREADABLE_COOKIES)
def test_an_unreadable_chat_cookie_means_no_name_yet(testapp, cookie):
    assert testapp.get("/chat/name", headers={"Cookie": cookie}).json == {"name": None}


@pytest.mark.parametrize("cookie", UNREADABLE_COOKIES)
def test_an_unreadable_chat_cookie_is_replaced_by_a_new_name(testapp, cookie):
    reply = testapp.post_json("/chat/name", {"name": "Ada"}, headers={"Cookie": cookie})
    assert reply.json == {"name": "Ada"} and "ssehub_chat_name=" in reply.headers["Set-Cookie"]


@pytest.mark.parametrize("cookie", UNREADABLE_COOKIES)
def test_posting_with_an_unreadable_chat_cookie_asks_for_a_name_first(testapp, cookie):
    reply = testapp.post_json(
        "/chat/messages", {"channel": "chat", "text": "hi"}, headers={"Cookie": cookie}, status=401
    )
    assert reply.json == {"error": "pick a name before posting"}


# Not one origin: folded over two lines, two origins, no host, a broken IPv6 literal.
NOT_AN_ORIGIN = [
    "https://a.example\r\n https://b.example",
    "https://a.example\n",
    "https://a.example https://b.example",
    "https://a.example,https://b.example",
    "https://",
    "http://[",
    "https://a.example/path",
]


@pytest.mark.parametrize("origin", NOT_AN_ORIGIN)
def test_an_origin_header_that_is_not_one_origin_may_not_read_events(make_app, origin):
    app = webtest_app(make_app(allowed_origins=("*",)))
    # No channel: an allowed origin would get a 400 for that, so a 403 is the origin check.
    reply = app.get("/events", headers={"Origin": origin}, status=403)
    assert "Access-Control-Allow-Origin" not in reply.headers and reply.json["error"]


@pytest.mark.parametrize("origin", NOT_AN_ORIGIN)
def test_an_origin_header_that_is_not_one_origin_may_not_post_chat(make_app, origin):
    app = webtest_app(make_app(allowed_origins=("*",)))
    body = json.dumps({"channel": "chat", "author": "Ada", "text": "hi"})
    reply = app.post("/widget/messages", body, content_type="text/plain", headers={"Origin": origin}, status=403)
    assert "Access-Control-Allow-Origin" not in reply.headers and reply.json["error"]
    app.post_json("/chat/name", {"name": "Ada"}, headers={"Origin": origin}, status=403)


def test_a_folded_origin_header_from_the_wire_is_refused_not_a_500(live):
    server = live(allowed_origins=("*",))
    response = exchange(
        server.port,
        (
            b"GET /events?channel=news HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Origin: https://a.example\r\n https://b.example\r\nConnection: close\r\n\r\n"
        ),
    )
    status, reply = status_and_json(response)
    assert status == 403 and "ALLOWED_ORIGINS" in reply["error"]


def test_a_chunked_publish_over_the_size_limit_is_413(live):
    server = live(max_event_bytes=1024)  # a body limit of 8 x 1 KiB + 64 KiB
    body = json.dumps({"channel": "news", "data": "x" * 80_000}).encode()
    response = exchange(
        server.port,
        (
            b"POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked(body)
        ),
    )
    status, reply = status_and_json(response)
    assert status == 413 and "bytes" in reply["error"]


def test_a_chunked_publish_within_the_limit_is_published(live):
    server = live()
    body = json.dumps({"channel": "news", "data": "x" * 20_000}).encode()
    response = exchange(
        server.port,
        (
            b"POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked(body)
        ),
    )
    assert status_and_json(response)[0] == 201


def test_content_length_with_transfer_encoding_is_refused_and_nothing_is_smuggled(live):
    # RFC 9112 §6.3: a proxy that frames by Content-Length would pass the second request on hidden.
    server = live()
    response = exchange(
        server.port,
        (
            b"POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunked(b'{"channel": "news", "data": "x"}')
            + b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        ),
    )
    assert response.startswith(b"HTTP/1.1 400 ") and response.count(b"HTTP/1.1 ") == 1
