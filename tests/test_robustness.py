"""Nothing a client sends reaches a 500: arbitrary bodies, URLs, headers and cookies, generated."""

import ipaddress
import json
from io import BytesIO

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Text with lone surrogates too: JSON carries one as "\ud800", and the hub must
# answer 400 (st.text() never draws one, st.text(st.characters()) very rarely).
texts = st.text() | st.tuples(st.text(), st.characters(categories=["Cs"]), st.text()).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
publish_like = st.fixed_dictionaries(
    {},
    optional={
        "channel": st.text(max_size=20) | json_values,
        "data": json_values,
        "event": st.text(max_size=20) | json_values,
    },
)
routes = st.sampled_from(["/events", "/publish", "/chat/name", "/chat/messages", "/readyz", "/", "/polyfills/x"])
# A fresh app per example, from the function-scoped make_app factory, on purpose.
fresh_app_per_example = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def status_of(app, environ):
    """Call the WSGI app and return its status without reading a (possibly endless) stream."""
    seen = []
    body = app(environ, lambda status, headers, exc_info=None: seen.append(status))
    getattr(body, "close", lambda: None)()
    return int(seen[0].split()[0])


def environ(method, path, query=b"", body=b"", content_type="application/json"):
    # A local request, from and to loopback: without PUBLISH_TOKEN only such a
    # request may publish (issue 9), so its body reaches the checks under test.
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_HOST": "localhost",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": BytesIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


@fresh_app_per_example
@given(body=publish_like | st.lists(publish_like, max_size=3) | json_values)
def test_any_json_body_to_publish_is_answered_below_500(make_app, body):
    app = make_app()
    raw = json.dumps(body).encode()
    assert status_of(app, environ("POST", "/publish", body=raw)) in (201, 400, 413)


@fresh_app_per_example
@given(
    route=routes,
    method=st.sampled_from(["GET", "POST", "OPTIONS", "PUT"]),
    query=st.binary(max_size=40),
    body=st.binary(max_size=60),
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", ""]),
)
def test_any_bytes_in_url_and_body_are_answered_below_500(make_app, route, method, query, body, content_type):
    app = make_app()
    assert status_of(app, environ(method, route, query, body, content_type)) < 500


# What a header can carry from the wire: latin-1 text; a folded line keeps its CRLF in pywsgi's environ.
header_text = st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=40)
header_values = header_text | st.lists(header_text, min_size=2, max_size=3).map("\r\n ".join)
request_headers = st.fixed_dictionaries(
    {},
    optional={
        "HTTP_COOKIE": header_values
        | header_text.map("ssehub_chat_name={}".format)
        | header_text.map('ssehub_chat_name="{}"'.format)
        | st.just(r'ssehub_chat_name="\303\251.x"'),
        "HTTP_ORIGIN": header_values
        | st.sampled_from(
            [
                "http://hub",
                "https://a.example",
                "null",
                "http://[",
                "https://",
                "https://a.example\r\n https://b.example",
            ]
        ),
        "HTTP_LAST_EVENT_ID": header_values | st.sampled_from(["0-0", "1-1", "-1", "99999999999999999999-0"]),
        "CONTENT_TYPE": header_values
        | st.sampled_from(
            [
                "application/json",
                "application/json; charset=latin-1",
                "text/plain",
                "multipart/form-data; boundary=x",
                "application/x-www-form-urlencoded",
            ]
        ),
        "HTTP_AUTHORIZATION": header_values | header_text.map("Bearer {}".format),
        "HTTP_SEC_FETCH_SITE": header_values | st.sampled_from(["same-origin", "same-site", "cross-site", "none"]),
        "HTTP_X_FORWARDED_FOR": header_values | st.sampled_from(["203.0.113.9", "127.0.0.1, 10.0.0.1", "::1"]),
    },
)
header_routes = st.sampled_from(
    [
        "/events?channel=news",
        "/events?channel=news&ssehub_poll=1",
        "/publish",
        "/chat/name",
        "/chat/messages",
        "/widget/messages",
        "/healthz",
    ]
)
header_bodies = st.sampled_from(
    [
        b"",
        b'{"channel": "news", "data": "x"}',
        b'{"channel": "chat", "text": "hi"}',
        b'{"channel": "chat", "author": "Ada", "text": "hi"}',
        b'{"name": "Ada"}',
    ]
) | st.binary(max_size=30)
hub_settings = st.fixed_dictionaries(
    {
        "allowed_origins": st.sampled_from([(), ("*",), ("https://a.example",)]),
        "publish_token": st.sampled_from([None, "token"]),
        "trusted_proxies": st.sampled_from([(), (ipaddress.ip_network("127.0.0.0/8"),)]),
    }
)


def answer(app, environ):
    """Status and, for an error, the body; a stream that did not fail is left unread."""
    seen = []
    body = app(environ, lambda status, headers, exc_info=None: seen.append((status, headers)))
    status = int(seen[0][0].split()[0])
    content = b"".join(body) if status >= 400 else None
    getattr(body, "close", lambda: None)()
    return status, dict(seen[0][1]), content


@fresh_app_per_example
@given(
    route=header_routes,
    method=st.sampled_from(["GET", "POST", "OPTIONS"]),
    headers=request_headers,
    body=header_bodies,
    hub=hub_settings,
)
def test_any_headers_and_cookies_are_answered_below_500_with_json_errors(make_app, route, method, headers, body, hub):
    path, _, query = route.partition("?")
    request = {**environ(method, path, query.encode(), body, content_type=""), **headers}
    status, response_headers, content = answer(make_app(**hub), request)
    assert status < 500
    if status >= 400:
        assert response_headers["Content-Type"] == "application/json"
        assert isinstance(json.loads(content)["error"], str)
