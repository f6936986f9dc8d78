"""The browser side served by the hub: static files, the vendored polyfill, the chat endpoints."""

import hashlib
import json
import os
import re
import subprocess

import pytest
import webtest

from ssehub import chat
from ssehub.stream import MAX_HISTORY
from tests.conftest import TEST_CONFIG

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLYFILL = "polyfills/event-source-polyfill/1.0.31/eventsource.js"
POLYFILL_SHA256 = "bcd881c256856288249248287166b5c72097b17fc674ffac6d91e1293df8e4e6"
# Node parses the file named first on its command line as IE8 would.
PARSE_AS_ES3 = (
    "require('acorn').parse(require('fs').readFileSync(process.argv[1], 'utf8'),"
    " {ecmaVersion: 3, allowReserved: 'never'});"
)


def test_the_vendored_polyfill_is_exactly_event_source_polyfill_1_0_31():
    with open(os.path.join(ROOT, POLYFILL), "rb") as source:
        assert hashlib.sha256(source.read()).hexdigest() == POLYFILL_SHA256
    assert os.path.exists(os.path.join(ROOT, os.path.dirname(POLYFILL), "LICENSE"))


@pytest.mark.parametrize(
    "script",
    ["frontend/loader.js", "frontend/tokens.js", "frontend/dom.js", "frontend/chat.js", "frontend/widget.js", POLYFILL],
)
def test_scripts_parse_as_ecmascript_3_like_ie8(script):
    result = subprocess.run(["node", "-e", PARSE_AS_ES3, script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_parse_check_catches_what_ie8_cannot_parse(tmp_path):
    bad = tmp_path / "bad.js"
    bad.write_text("var o = {a: 1,}; o.default = 2;")
    result = subprocess.run(
        ["node", "-e", PARSE_AS_ES3, str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0


def test_the_evs_preamble_is_a_comment_line_of_exactly_2056_bytes(make_app):
    # amvtek's polyfill asks evs_preamble=2056 (2 KB + 8) so IE 8-9's XDomainRequest
    # starts reading; the blank line that ends the comment comes on top (issue 9, item 7c).
    app = make_app()
    app.broker.publish("news", "first")
    body = webtest.TestApp(app).get("/events?channel=news&history=1&evs_preamble=2056").body
    comment = b":" + b" " * 2054 + b"\n"
    assert len(comment) == 2056
    assert body.startswith(comment + b"\n" + b"retry: 1000\n\n")


def test_the_loader_stays_small():
    assert os.path.getsize(os.path.join(ROOT, "frontend/loader.js")) < 5000


def frontend_file(name):
    with open(os.path.join(ROOT, "frontend", name), "rb") as source:
        return source.read()


@pytest.mark.parametrize("script", ["widget.js", "chat.js"])
def test_each_page_script_is_the_loader_the_dom_helpers_and_its_own_code_in_one_file(testapp, script):
    reply = testapp.get(f"/{script}")
    assert reply.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert reply.body == b"\n".join(frontend_file(name) for name in ("loader.js", "dom.js", script))
    assert testapp.get(f"/{script}", headers={"If-None-Match": reply.headers["ETag"]}, status=304)


def test_widget_js_stays_small(testapp):
    # The README states the size; keep it honest (unminified, before gzip).
    assert len(testapp.get("/widget.js").body) < 20_000


@pytest.mark.parametrize("helper", ["on", "onSubmit", "setText", "element", "clock"])
def test_the_dom_helpers_are_written_once_in_dom_js(helper):
    # Issue 10, item 4: two copies of clock had already drifted apart.
    definition = re.compile(rb"function " + helper.encode() + rb"\(")
    assert definition.search(frontend_file("dom.js"))
    assert not definition.search(frontend_file("chat.js")) and not definition.search(frontend_file("widget.js"))


def clocks(*ids):
    """dom.js's clock for each id, run by Node in Kathmandu (UTC+05:45), where
    local time differs from UTC in hours and minutes."""
    run = (
        "const window = {ssehub: {}};"
        "require('vm').runInNewContext(require('fs').readFileSync('frontend/dom.js', 'utf8'),"
        " {window: window, document: {}});"
        "console.log(JSON.stringify(JSON.parse(process.argv[1]).map(window.ssehub.clock)));"
    )
    env = {**os.environ, "TZ": "Asia/Kathmandu"}
    result = subprocess.run(
        ["node", "-e", run, json.dumps(ids)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_clock_shows_the_local_time_an_event_id_was_published():
    # 1700000400000 ms is 2023-11-14 22:20 UTC, 04:05 the next day in Kathmandu.
    assert clocks("1700000400000-0", "news=1700000400000-7,chat=1-0") == ["4:05", "4:05"]


@pytest.mark.parametrize("bad", [None, "", "hello", "1700000400000", "-0", "99999999999999999999-0"])
def test_clock_shows_nothing_for_an_id_without_a_time_rather_than_a_wrong_time(bad):
    assert clocks(bad) == [""]


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/", "text/html; charset=utf-8"),
        ("/loader.js", "text/javascript; charset=utf-8"),
        ("/tokens.js", "text/javascript; charset=utf-8"),
        ("/chat.js", "text/javascript; charset=utf-8"),
        ("/chat.css", "text/css; charset=utf-8"),
        (f"/{POLYFILL}", "text/javascript; charset=utf-8"),
    ],
)
def test_static_files_are_served_with_their_types(testapp, path, content_type):
    reply = testapp.get(path)
    assert reply.headers["Content-Type"] == content_type
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


def test_caching_headers_fit_each_file(testapp):
    assert "no-cache" in testapp.get("/").headers["Cache-Control"]
    assert "max-age=300" in testapp.get("/loader.js").headers["Cache-Control"]
    polyfill = testapp.get(f"/{POLYFILL}").headers["Cache-Control"]
    assert "immutable" in polyfill and "max-age=31536000" in polyfill


def test_the_demo_page_forbids_inline_scripts(testapp):
    policy = testapp.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


@pytest.mark.parametrize(
    "path",
    [
        "/polyfills/../ssehub/config.py",
        "/polyfills/%2e%2e/ssehub/config.py",
        "/polyfills/..%2fservice.py",
        "/polyfills//etc/passwd",
        "/polyfills/event-source-polyfill/../../README.md",
        "/index.html",
        "/app.py",
    ],
)
def test_nothing_outside_the_static_folders_is_served(testapp, path):
    reply = testapp.get(path, status=404, expect_errors=True)
    assert reply.json["error"]


@pytest.fixture
def chat_client(make_app):
    return webtest.TestApp(make_app(secret_key="s" * 32), extra_environ={"REMOTE_ADDR": "192.0.2.10"})


def join(client, name="Ada"):
    return client.post_json("/chat/name", {"name": name})


def test_a_name_is_kept_in_a_signed_http_only_cookie(chat_client):
    reply = join(chat_client, "  Ada   Lovelace ")
    assert reply.json == {"name": "Ada Lovelace"}
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert chat_client.get("/chat/name").json == {"name": "Ada Lovelace"}


def test_a_chat_post_is_published_with_the_cookie_name_never_a_posted_author(chat_client):
    join(chat_client)
    reply = chat_client.post_json("/chat/messages", {"text": "hi <b>all</b>", "author": "Mallory"}, status=201)
    [event] = chat_client.app.broker.replay("chat", None, 10).events
    assert event.type == "chat" and reply.json["channel"] == "chat"
    data = json.loads(event.data)
    assert (data["author"], data["text"]) == ("Ada", "hi <b>all</b>")


def test_a_forged_cookie_is_not_a_name(chat_client):
    chat_client.set_cookie(chat.COOKIE, chat.signed_name("Admin", b"other key, not ours!!"))
    assert chat_client.get("/chat/name").json == {"name": None}
    reply = chat_client.post_json("/chat/messages", {"text": "hi"}, status=401)
    assert reply.json["error"] == "pick a name before posting"


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "a name is 1-32 characters"),
        ("x" * 33, "a name is 1-32 characters"),
        ("a\x07b", "control characters"),
        (5, "1-32"),
    ],
)
def test_bad_names_are_refused(chat_client, name, message):
    assert message in chat_client.post_json("/chat/name", {"name": name}, status=400).json["error"]


@pytest.mark.parametrize(
    "text, status, message",
    [
        ("   ", 400, "write a message first"),
        ("x" * 501, 413, "a message is at most 500 characters; this one has 501"),
        ("bell\x07", 400, "a message cannot contain control characters"),
    ],
)
def test_bad_messages_are_refused_with_a_clear_reason(chat_client, text, status, message):
    join(chat_client)
    assert chat_client.post_json("/chat/messages", {"text": text}, status=status).json["error"] == message


def test_chat_goes_only_to_chat_channels(chat_client):
    join(chat_client)
    reply = chat_client.post_json("/chat/messages", {"text": "x", "channel": "news"}, status=403)
    assert "CHAT_CHANNELS" in reply.json["error"]


def test_a_burst_of_posts_is_rate_limited_per_client(chat_client):
    join(chat_client)
    statuses = [chat_client.post_json("/chat/messages", {"text": f"m{n}"}, expect_errors=True) for n in range(8)]
    assert [r.status_int for r in statuses[: chat.RATE_BURST]] == [201] * chat.RATE_BURST
    refused = statuses[-1]
    assert refused.status_int == 429 and refused.json["error"].startswith("slow down: wait")
    assert int(refused.headers["Retry-After"]) >= 1


def test_cross_site_chat_posts_are_refused(chat_client):
    join(chat_client)
    reply = chat_client.post_json(
        "/chat/messages", {"text": "x"}, headers={"Origin": "https://evil.example"}, status=403
    )
    assert "hub's own page" in reply.json["error"]


def test_without_a_secret_key_names_still_work_within_the_process(make_app):
    assert TEST_CONFIG.secret_key is None
    client = webtest.TestApp(make_app())
    join(client)
    assert client.get("/chat/name").json == {"name": "Ada"}


def test_an_oversized_chat_body_is_413_json(chat_client):
    join(chat_client)
    reply = chat_client.post("/chat/messages", b"x" * 20_000, content_type="application/json", status=413)
    assert reply.json["error"]


def test_chat_settings_give_the_page_the_hubs_channel_and_limits(testapp):
    assert testapp.get("/chat/settings").json == {
        "channel": "chat",
        "event": chat.CHAT_EVENT,
        "max_name_chars": chat.MAX_NAME_CHARS,
        "max_text_chars": chat.MAX_TEXT_CHARS,
        "history": chat.HISTORY,
    }
    assert chat.HISTORY <= MAX_HISTORY  # more would be a 400 from /events


@pytest.mark.parametrize("channels, channel", [(("lobby", "chat"), "lobby"), ((), None)])
def test_chat_settings_name_the_channel_posts_go_to_or_none_when_chat_is_off(make_app, channels, channel):
    client = webtest.TestApp(make_app(chat_channels=channels))
    assert client.get("/chat/settings").json["channel"] == channel


def test_the_demo_page_writes_no_limits_of_its_own():
    assert b"maxlength" not in frontend_file("index.html").lower()


HOST = "https://blog.example"


@pytest.fixture
def widget_client(make_app):
    return webtest.TestApp(make_app(allowed_origins=(HOST,)), extra_environ={"REMOTE_ADDR": "198.51.100.7"})


def widget_post(client, body, origin=HOST, status=201, content_type="text/plain"):
    headers = {"Origin": origin} if origin else {}
    return client.post("/widget/messages", json.dumps(body), headers=headers, content_type=content_type, status=status)


def test_widget_chat_from_an_allowed_origin_is_published_with_cors(widget_client):
    reply = widget_post(widget_client, {"channel": "chat", "author": "Ada", "text": "hi"})
    assert reply.headers["Access-Control-Allow-Origin"] == HOST
    data = json.loads(widget_client.app.broker.recent("chat", 1)[0].data)
    assert (data["author"], data["text"]) == ("Ada", "hi")
    widget_post(
        widget_client, {"channel": "chat", "author": "Ada", "text": "json too"}, content_type="application/json"
    )


@pytest.mark.parametrize("origin", ["https://evil.example", None])
def test_widget_chat_needs_an_allowed_origin(widget_client, origin):
    reply = widget_post(widget_client, {"channel": "chat", "author": "Ada", "text": "hi"}, origin=origin, status=403)
    assert "ALLOWED_ORIGINS" in reply.json["error"]
    assert widget_client.app.broker.recent("chat", 1) == []


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"channel": "news", "author": "Ada", "text": "hi"}, 403, "chat is not open on 'news'"),
        ({"channel": "chat", "author": "", "text": "hi"}, 400, "a name is 1-32 characters"),
        ({"channel": "chat", "author": "x" * 33, "text": "hi"}, 400, "a name is 1-32 characters"),
        ({"channel": "chat", "author": "A\u0000da", "text": "hi"}, 400, "a name cannot contain control characters"),
        ({"channel": "chat", "author": "Ada", "text": "x" * 501}, 413, "a message is at most 500 characters"),
        (["not", "an", "object"], 400, "send a JSON object"),
    ],
)
def test_widget_chat_refusals_are_readable_by_the_page(widget_client, body, status, message):
    reply = widget_post(widget_client, body, status=status)
    assert message in reply.json["error"]
    assert reply.headers["Access-Control-Allow-Origin"] == HOST


def test_widget_chat_is_rate_limited_per_client(widget_client):
    replies = [
        widget_post(widget_client, {"channel": "chat", "author": "Ada", "text": str(n)}, status="*") for n in range(7)
    ]
    assert [r.status_int for r in replies][-1] == 429


def test_widget_chat_preflight_for_json_senders(widget_client):
    reply = widget_client.options("/widget/messages", headers={"Origin": HOST}, status=204)
    assert reply.headers["Access-Control-Allow-Methods"] == "POST"
    assert reply.headers["Access-Control-Allow-Headers"] == "Content-Type"
