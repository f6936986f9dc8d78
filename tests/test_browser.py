"""The chat demo in real headless Chromium: native EventSource, the polyfill, and chat.

Screenshots go to test-artifacts/ for a person to look at.
"""

import json
import os

import gevent
import pytest

from tests.browser import ARTIFACTS, NO_EVENTSOURCE, NO_FETCH

MESSAGES = (
    "Array.prototype.map.call(document.querySelectorAll('#messages .message-text'),"
    " function (p) { return p.textContent; })"
)


def chat_event(text, author="python"):
    return json.dumps({"author": author, "text": text, "time": "2026-11-23T22:30:00+00:00"})


def open_demo(browser, server, transport):
    browser.get(server.url + "/")
    browser.wait_until(f"document.getElementById('transport').textContent.indexOf('{transport}') === 0")
    browser.wait_until("document.getElementById('status').textContent === 'live'")


def test_native_eventsource_shows_events_published_from_python(live, browsers):
    server = live()
    server.publish("chat", chat_event("from before the page opened"), event="chat")
    browser = browsers()
    open_demo(browser, server, "EventSource")
    server.publish("chat", chat_event("hello from python"), event="chat")
    browser.wait_until(f"{MESSAGES}.length === 2")
    assert browser.run(f"return {MESSAGES};") == ["from before the page opened", "hello from python"]
    browser.screenshot(os.path.join(ARTIFACTS, "demo-native.png"))


class CountingPolls:
    """Counts long-poll responses; optionally cuts some off in the middle of an event."""

    def __init__(self, app, cut_every=0):
        self.app = app
        self.cut_every = cut_every
        self.polls = 0
        self.cuts = 0

    def __call__(self, environ, start_response):
        body = self.app(environ, start_response)
        if environ["PATH_INFO"] != "/events" or "ssehub_poll" not in environ["QUERY_STRING"]:
            return body
        self.polls += 1
        return self._cut(body) if self.cut_every and self.polls % self.cut_every == 0 else body

    def _cut(self, body):
        try:
            for chunk in body:
                middle = chunk.find(b"\ndata: ")
                if middle >= 0:
                    self.cuts += 1
                    yield chunk[: middle + 8]  # the id and half a data line, no blank line
                    return
                yield chunk
        finally:
            body.close()


def publish_in_bursts_and_pauses(server, count=100):
    """Bursts of 10; pauses longer than the polyfill's 1 s retry (it clamps
    retry to at least 1 s) alternate with short ones that land mid-poll."""
    for n in range(count):
        server.publish("chat", chat_event(f"m{n}"), event="chat")
        if n % 10 == 9:
            gevent.sleep(1.2 if n % 20 == 9 else 0.1)


@pytest.mark.parametrize(
    "name, before_page, cut_every",
    [
        ("fetch", [NO_EVENTSOURCE], 0),
        ("xhr", [NO_EVENTSOURCE, NO_FETCH], 0),
        ("cut-off", [NO_EVENTSOURCE], 3),
    ],
)
def test_the_polyfill_long_polls_100_events_in_order_none_lost_none_repeated(
    live, browsers, name, before_page, cut_every
):
    polls = {}

    def wrap(app):
        polls["counter"] = CountingPolls(app, cut_every)
        return polls["counter"]

    server = live(wrapper=wrap)
    browser = browsers(*before_page)
    open_demo(browser, server, "long-polling")
    assert browser.run("return typeof window.EventSourcePolyfill;") == "function"
    publish_in_bursts_and_pauses(server)
    browser.wait_until(f"{MESSAGES}.length >= 100", timeout=60)
    assert browser.run(f"return {MESSAGES};") == [f"m{n}" for n in range(100)]
    counter = polls["counter"]
    assert counter.polls > 5, counter.polls
    if cut_every:
        assert counter.cuts >= 1
    browser.screenshot(os.path.join(ARTIFACTS, f"demo-polyfill-{name}.png"))


def join(browser, name):
    browser.run(
        "document.getElementById('name').value = arguments[0];document.querySelector('#name-form button').click();",
        name,
    )
    browser.wait_until("document.getElementById('message-form').className.indexOf('is-hidden') === -1")


def post(browser, text):
    browser.run(
        "document.getElementById('text').value = arguments[0];document.querySelector('#message-form button').click();",
        text,
    )


def notice(browser):
    return browser.run(
        "var n = document.getElementById('notice');return n.className.indexOf('is-hidden') === -1 ? n.textContent : '';"
    )


def test_chat_between_two_pages_shows_each_message_once_and_markup_as_text(live, browsers):
    server = live(secret_key="k" * 32)
    ada, bob = browsers(), browsers(NO_EVENTSOURCE)
    open_demo(ada, server, "EventSource")
    open_demo(bob, server, "long-polling")
    join(ada, "Ada")
    join(bob, "Bob")
    post(ada, "hello Bob")
    hostile = '<img src=x onerror="window.pwned=1"></script><script>window.pwned=2</script>'
    post(bob, hostile)
    for browser in (ada, bob):
        browser.wait_until(f"{MESSAGES}.length === 2")
        assert browser.run(f"return {MESSAGES};") == ["hello Bob", hostile]
        authors = browser.run(
            "return Array.prototype.map.call(document.querySelectorAll('.message-author'),"
            " function (a) { return a.textContent; });"
        )
        assert authors == ["Ada", "Bob"]
        assert browser.run("return document.querySelectorAll('#messages img, #messages script').length;") == 0
        assert browser.run("return window.pwned === undefined;")
    ada.screenshot(os.path.join(ARTIFACTS, "chat-native.png"))
    bob.screenshot(os.path.join(ARTIFACTS, "chat-polyfill.png"))


def test_over_long_messages_and_bursts_are_refused_with_a_clear_message(live, browsers):
    server = live(secret_key="k" * 32)
    browser = browsers()
    open_demo(browser, server, "EventSource")
    join(browser, "Eve")
    post(browser, "x" * 600)
    browser.wait_until("document.getElementById('notice').textContent.length > 0")
    assert notice(browser) == "a message is at most 500 characters; this one has 600"
    for n in range(8):
        post(browser, f"burst {n}")
    browser.wait_until("document.getElementById('notice').textContent.indexOf('slow down') === 0")
    assert notice(browser).startswith("slow down: wait")
    browser.screenshot(os.path.join(ARTIFACTS, "chat-refused.png"))


def test_the_demo_marks_names_it_did_not_sign_as_guests(live, browsers):
    server = live(secret_key="k" * 32)
    ada = browsers()
    open_demo(ada, server, "EventSource")
    join(ada, "Ada")
    post(ada, "signed by the hub")
    ada.wait_until(f"{MESSAGES}.length === 1")
    # What anyone can send with curl: the hub's own Origin and any name, no cookie.
    status, _ = server.request(
        "POST",
        "/widget/messages",
        {"channel": "chat", "author": "Ada", "text": "not Ada"},
        headers={"Origin": server.url},
    )
    assert status == 201
    ada.wait_until(f"{MESSAGES}.length === 2")
    rows = ada.run(
        "return Array.prototype.map.call(document.querySelectorAll('#messages .message'), function (m) {"
        " var guest = m.querySelector('.message-guest');"
        " return [m.querySelector('.message-author').textContent, guest && guest.textContent,"
        " m.className.indexOf('message-mine') !== -1]; });"
    )
    assert rows == [["Ada", None, True], ["Ada", "guest", False]]
    ada.screenshot(os.path.join(ARTIFACTS, "chat-guest.png"))


def test_the_demo_listens_on_the_channel_it_posts_to(live, browsers):
    # Issue 10, item 4: with CHAT_CHANNELS=lobby the page listened on "chat" and never saw its own posts.
    server = live(secret_key="k" * 32, chat_channels=("lobby",))
    browser = browsers()
    open_demo(browser, server, "EventSource")
    join(browser, "Ada")
    post(browser, "hello lobby")
    browser.wait_until(f"{MESSAGES}.length === 1", message="the post to show")
    assert browser.run(f"return {MESSAGES};") == ["hello lobby"]


def test_with_chat_turned_off_the_demo_says_so_instead_of_offering_to_join(live, browsers):
    server = live(chat_channels=())
    browser = browsers()
    browser.get(server.url + "/")
    browser.wait_until("document.getElementById('notice').textContent !== ''", message="the notice")
    assert notice(browser) == "Chat is turned off on this hub."
    shown = browser.run("return Array.prototype.map.call(document.forms, function (f) { return f.offsetHeight > 0; });")
    assert shown == [False, False]
    browser.screenshot(os.path.join(ARTIFACTS, "chat-off.png"))


def test_the_demo_takes_its_limits_and_history_from_the_hub(live, browsers, monkeypatch):
    monkeypatch.setattr("ssehub.chat.MAX_NAME_CHARS", 12)
    monkeypatch.setattr("ssehub.chat.MAX_TEXT_CHARS", 40)
    monkeypatch.setattr("ssehub.chat.HISTORY", 2, raising=False)
    server = live()
    for n in range(3):
        server.publish("chat", chat_event(f"old {n}"), event="chat")
    browser = browsers()
    open_demo(browser, server, "EventSource")
    browser.wait_until(f"{MESSAGES}.length >= 2", message="the history")
    assert browser.run(f"return {MESSAGES};") == ["old 1", "old 2"]
    limits = browser.run(
        "return [document.getElementById('name').maxLength, document.getElementById('text').maxLength];"
    )
    assert limits == [12, 40]
