"""The embeddable widget on a page of another origin, in headless Chromium."""

import http.client
import json
import os
import re
import time

import pytest

from ssehub.brokers.memory import MemoryBroker
from tests.browser import ARTIFACTS, NO_EVENTSOURCE
from tests.conftest import wait_for
from tests.host_site import HostSite

HOST_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>A host page</title>
<style>
  /* The host's own styles: none of this may reach the widgets. */
  li {{ color: red !important; font-size: 40px !important; }}
  p {{ background: yellow; }}
  body {{ font-family: Georgia, serif; margin: 24px; background: #f4f1ea; }}
  .row {{ display: flex; gap: 24px; align-items: flex-start; }}
  .row > div {{ flex: 1; }}
</style></head>
<body>
  <h1>Someone else's blog</h1>
  <div>The widgets below come from the hub, embedded with one tag each.</div>
  <div class="row"><div id="news-box"></div><div id="chat-box"></div></div>
  <script async src="{hub}/widget.js" data-channel="news" data-title="Newsroom" data-theme="light"
          data-order="newest-last" data-max-items="50" data-target="news-box"></script>
  <script async src="{hub}/widget.js" data-channel="chat" data-mode="chat" data-target="chat-box"
          data-title="Chat" data-theme="dark"></script>
</body></html>
"""

# Find the widget titled arguments[0] through its shadow root.
FIND_WIDGET = """
var hosts = Array.prototype.filter.call(document.querySelectorAll('div'), function (d) { return d.shadowRoot; });
var root = null;
for (var i = 0; i < hosts.length; i += 1) {
  if (hosts[i].shadowRoot.querySelector('.ssehub-w-head').firstChild.textContent === arguments[0]) {
    root = hosts[i].shadowRoot;
  }
}
"""


class Recorder:
    """Remembers the query of every /events request the hub gets, and the status of every widget post."""

    def __init__(self, app):
        self.app = app
        self.queries = []
        self.posts = []

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] == "/events":
            self.queries.append(environ["QUERY_STRING"])
        if environ["PATH_INFO"] == "/widget/messages" and environ["REQUEST_METHOD"] == "POST":

            def recording(status, headers, *exc_info):
                self.posts.append(int(status.split()[0]))
                return start_response(status, headers, *exc_info)

            return self.app(environ, recording)
        return self.app(environ, start_response)


@pytest.fixture
def site(live):
    """A hub and a host page on another origin; `allowed` says whether the hub lets it in."""
    started = []

    def start(allowed=True, page=HOST_PAGE, broker=None):
        host = HostSite(page)
        recorder = {}
        hub = live(
            broker,
            wrapper=lambda app: recorder.setdefault("r", Recorder(app)),
            secret_key="k" * 32,
            allowed_origins=(host.url,) if allowed else ("https://only-this.example",),
        )
        host.hub_url = hub.url
        started.append(host)
        return hub, host, recorder["r"]

    yield start
    for host in started:
        host.stop()


def widget(browser, title, script, *args):
    """Run `script` with `root` (the widget's shadow root) and `args` (arguments[1:])."""
    return browser.run(
        FIND_WIDGET + "return root && (function (root, args) {" + script + "})(root, arguments);", title, *args
    )


def texts(browser, title):
    return widget(
        browser,
        title,
        "return Array.prototype.map.call(root.querySelectorAll('.ssehub-w-text'),"
        " function (p) { return p.textContent; });",
    )


def status(browser, title):
    return widget(browser, title, "return root.querySelector('.ssehub-w-status').textContent;")


def shows(browser, title, expected, timeout=20):
    wait_for(
        lambda: texts(browser, title) == expected,
        timeout=timeout,
        interval=0.05,
        message=f"{title} to show {expected[-3:]}… (shows {texts(browser, title)})",
    )


def chat_post(browser, author, text):
    widget(
        browser,
        "Chat",
        "root.querySelector('.ssehub-w-name').value = args[1];"
        "root.querySelector('.ssehub-w-message').value = args[2];"
        "root.querySelector('.ssehub-w-send').click(); return true;",
        author,
        text,
    )


@pytest.mark.parametrize("transport, before_page", [("native", []), ("polyfill", [NO_EVENTSOURCE])])
def test_two_widgets_on_another_origin_show_events_in_order_once_over_one_connection(
    site, browsers, transport, before_page
):
    hub, host, recorder = site()
    hub.publish("news", "before the page loaded")
    browser = browsers(*before_page)
    browser.get(host.url + "/")
    wait_for(lambda: status(browser, "Newsroom") == "live", timeout=20, interval=0.05, message="widget live")
    for n in range(15):
        hub.publish("news", f"headline {n}")
    shows(browser, "Newsroom", ["before the page loaded"] + [f"headline {n}" for n in range(15)])
    assert status(browser, "Newsroom") == "live"  # long-polling is not "reconnecting"
    # One namespace, two widgets from two copies of the script, one shared connection.
    assert browser.run("return Object.keys(window).filter(function (k) { return /ssehub/i.test(k); });") == ["ssehub"]
    assert (
        browser.run(
            "return Array.prototype.filter.call(document.querySelectorAll('div'),"
            " function (d) { return d.shadowRoot; }).length;"
        )
        == 2
    )
    assert recorder.queries and all(q.startswith("channel=news&channel=chat&") for q in recorder.queries)
    if transport == "native":
        assert len(recorder.queries) == 1
    else:
        assert all("ssehub_poll=1" in q for q in recorder.queries)
    # The host's li and p rules stay outside the widget.
    assert widget(browser, "Newsroom", "return getComputedStyle(root.querySelector('li')).fontSize;") != "40px"
    browser.screenshot(os.path.join(ARTIFACTS, f"widget-{transport}.png"))


def test_chat_widgets_talk_across_transports_and_show_markup_as_text(site, browsers):
    hub, host, _ = site()
    native, polyfill = browsers(), browsers(NO_EVENTSOURCE)
    for browser in (native, polyfill):
        browser.get(host.url + "/")
        wait_for(lambda page=browser: status(page, "Chat") == "live", timeout=20, interval=0.05, message="chat live")
    chat_post(native, "Ada", "hello from Ada")
    hostile = '<img src=x onerror="window.pwned=1"></script><script>window.pwned=2</script>'
    chat_post(polyfill, "Bob <b>", hostile)
    for browser in (native, polyfill):
        shows(browser, "Chat", [hostile, "hello from Ada"])  # newest first
        authors = widget(
            browser,
            "Chat",
            "return Array.prototype.map.call(root.querySelectorAll('.ssehub-w-author'),"
            " function (a) { return a.textContent; });",
        )
        assert authors == ["Bob <b>", "Ada"]
        assert widget(browser, "Chat", "return root.querySelectorAll('img, script, b').length;") == 0
        assert browser.run("return window.pwned === undefined;")
    native.screenshot(os.path.join(ARTIFACTS, "widget-chat-dark.png"))


def test_widget_chat_is_refused_with_a_reason_when_too_long_or_too_fast(site, browsers):
    hub, host, recorder = site()
    browser = browsers()
    browser.get(host.url + "/")
    wait_for(lambda: status(browser, "Chat") == "live", timeout=20, interval=0.05, message="chat live")
    notice = "return root.querySelector('.ssehub-w-notice').textContent;"
    chat_post(browser, "Eve", "x" * 600)
    wait_for(
        lambda: widget(browser, "Chat", notice) == "a message is at most 500 characters; this one has 600",
        message="the length notice",
    )
    chat_post(browser, "", "no name")
    wait_for(lambda: widget(browser, "Chat", notice) == "a name is 1-32 characters", message="the name notice")
    # Posts one after another outrun the refill (a token every 2 s) well
    # before the 30th; past the burst the hub answers 429.
    typed = "return root.querySelector('.ssehub-w-message').value;"
    slowed = re.compile(r"slow down: wait \d+ s before posting again")
    for n in range(30):
        chat_post(browser, "Eve", f"burst {n}")
        # The page has the answer when it clears the box (posted) or says why not.
        wait_for(
            lambda: widget(browser, "Chat", typed) == "" or slowed.fullmatch(widget(browser, "Chat", notice)),
            message=f"the answer to post {n}",
        )
        if slowed.fullmatch(widget(browser, "Chat", notice)):
            break
    assert recorder.posts[-1] == 429, recorder.posts
    published = [json.loads(e.data)["text"] for e in hub.app.broker.recent("chat", 50)]
    assert published == [f"burst {k}" for k in range(n)]  # the refused one is not among them


def test_a_page_on_a_disallowed_origin_gets_nothing(site, browsers):
    hub, host, recorder = site(allowed=False)
    hub.publish("news", "secret")
    browser = browsers()
    browser.get(host.url + "/")
    wait_for(
        lambda: status(browser, "Newsroom") == "not available on this site",
        timeout=20,
        interval=0.05,
        message="the refusal to show",
    )
    assert texts(browser, "Newsroom") == []
    chat_post(browser, "Mallory", "let me in")
    wait_for(
        lambda: widget(browser, "Chat", "return root.querySelector('.ssehub-w-notice').textContent;"),
        message="the post to fail",
    )
    assert [e.data for e in hub.app.broker.recent("chat", 10)] == []


def column(browser, title, name):
    """The text of every `.ssehub-w-<name>` in the widget, in list order."""
    return widget(
        browser,
        title,
        "return Array.prototype.map.call(root.querySelectorAll('.ssehub-w-' + args[1]),"
        " function (e) { return e.textContent; });",
        name,
    )


def signed_post(hub, name, text):
    """Post as the demo page does: pick a name, then post with the cookie the hub signed."""
    connection = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=5)
    json_type = {"Content-Type": "application/json"}
    connection.request("POST", "/chat/name", json.dumps({"name": name}), json_type)
    joined = connection.getresponse()
    joined.read()
    cookie = joined.getheader("Set-Cookie").split(";")[0]
    connection.request("POST", "/chat/messages", json.dumps({"text": text}), {**json_type, "Cookie": cookie})
    assert connection.getresponse().status == 201
    connection.close()


def test_the_widget_marks_names_the_hub_did_not_sign_as_guests(site, browsers):
    hub, host, _ = site()
    browser = browsers()
    browser.get(host.url + "/")
    wait_for(lambda: status(browser, "Chat") == "live", timeout=20, interval=0.05, message="chat live")
    signed_post(hub, "Ada", "signed by the hub")
    chat_post(browser, "Ada", "typed into a widget")
    shows(browser, "Chat", ["typed into a widget", "signed by the hub"])
    assert column(browser, "Chat", "author") == ["Ada", "Ada"]
    marks = widget(
        browser,
        "Chat",
        "return Array.prototype.map.call(root.querySelectorAll('.ssehub-w-meta'),"
        " function (m) { var g = m.querySelector('.ssehub-w-guest');"
        " return g && g.textContent; });",
    )
    assert marks == ["guest", None]
    browser.screenshot(os.path.join(ARTIFACTS, "widget-guest.png"))


TYPES_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Event types</title></head>
<body>
  <script async src="{hub}/widget.js" data-channel="news" data-title="Everything" data-order="newest-last"></script>
  <script async src="{hub}/widget.js" data-channel="news" data-title="Greetings" data-order="newest-last"
          data-events="greet, alert"></script>
</body></html>
"""


@pytest.mark.parametrize("transport, before_page", [("native", []), ("polyfill", [NO_EVENTSOURCE])])
def test_a_widget_shows_every_event_type_unless_data_events_picks_some(site, browsers, transport, before_page):
    hub, host, _ = site(page=TYPES_PAGE)
    hub.publish("news", "hello\nworld", event="greet")  # the README's example, from history
    browser = browsers(*before_page)
    browser.get(host.url + "/")
    wait_for(lambda: status(browser, "Greetings") == "live", timeout=20, interval=0.05, message="widgets live")
    hub.publish("news", "plain")
    hub.publish("news", "fire", event="alert")
    hub.publish("news", {"author": "Ada", "text": "a chat line", "time": "2026-11-23T22:30:00+00:00"}, event="chat")
    hub.publish("news", "welcome back", event="greet")
    shows(browser, "Everything", ["hello\nworld", "plain", "fire", "a chat line", "welcome back"])
    shows(browser, "Greetings", ["hello\nworld", "fire", "welcome back"])
    assert column(browser, "Everything", "author") == ["Ada"]


def test_history_items_show_when_each_event_was_published_not_when_the_page_loaded(site, browsers):
    three_hours_ago = MemoryBroker(1000, clock=lambda: time.time() - 3 * 3600)
    hub, host, _ = site(broker=three_hours_ago)
    published = [hub.publish("news", f"old {n}") for n in range(2)]
    browser = browsers()
    browser.get(host.url + "/")
    shows(browser, "Newsroom", ["old 0", "old 1"])
    clock = (
        "var d = new Date(arguments[0]);return d.getHours() + ':' + (d.getMinutes() < 10 ? '0' : '') + d.getMinutes();"
    )
    expected = [browser.run(clock, int(event_id.split("-")[0])) for event_id in published]
    assert column(browser, "Newsroom", "time") == expected
    assert browser.run(clock, int(time.time() * 1000)) not in expected


NARROW_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>A narrow column</title></head>
<body style="margin: 8px">
  <div style="width: 200px" id="column"></div>
  <script async src="{hub}/widget.js" data-channel="announcements.worldwide.live" data-target="column"
          data-theme="light"></script>
</body></html>
"""


def test_a_narrow_widget_keeps_its_title_clear_of_the_live_badge(site, browsers):
    hub, host, _ = site(page=NARROW_PAGE)
    browser = browsers()
    browser.get(host.url + "/")
    title = "announcements.worldwide.live"  # the default title: the channel, one long word
    wait_for(lambda: status(browser, title) == "live", timeout=20, interval=0.05, message="widget live")
    boxes = widget(
        browser,
        title,
        """
        var head = root.querySelector('.ssehub-w-head'), title = head.firstChild;
        var range = document.createRange();
        range.selectNodeContents(title);
        function box(r) { return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; }
        return {head: box(head.getBoundingClientRect()),
                title: box(title.nodeType === 1 ? title.getBoundingClientRect() : range.getBoundingClientRect()),
                badge: box(root.querySelector('.ssehub-w-status').getBoundingClientRect())};""",
    )
    browser.screenshot(os.path.join(ARTIFACTS, "widget-narrow.png"))
    title_box, badge, head = boxes["title"], boxes["badge"], boxes["head"]
    apart = (
        title_box["right"] <= badge["left"]
        or badge["right"] <= title_box["left"]
        or title_box["bottom"] <= badge["top"]
        or badge["bottom"] <= title_box["top"]
    )
    assert apart, boxes
    assert head["left"] <= title_box["left"] and badge["right"] <= head["right"], boxes
    assert head["right"] - head["left"] <= 200, boxes
