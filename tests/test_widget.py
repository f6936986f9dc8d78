"""The embeddable widget on a page of another origin, in headless Chromium."""

import os

import gevent.pool
import pytest
from gevent.pywsgi import WSGIServer

from tests.conftest import wait_for
from tests.test_browser import ARTIFACTS, NO_EVENTSOURCE, browsers, driver  # noqa: F401 (fixtures)

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


class HostSite:
    """A page on another origin (another port) that embeds two widgets of the hub."""

    def __init__(self):
        self.hub_url = None
        self.server = WSGIServer(("127.0.0.1", 0), self.app, spawn=gevent.pool.Pool(), log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def app(self, environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [HOST_PAGE.format(hub=self.hub_url).encode()]


class Recorder:
    """Remembers the query of every /events request the hub gets."""

    def __init__(self, app):
        self.app = app
        self.queries = []

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] == "/events":
            self.queries.append(environ["QUERY_STRING"])
        return self.app(environ, start_response)


@pytest.fixture
def site(live):
    """A hub and a host page on another origin; `allowed` says whether the hub lets it in."""
    started = []

    def start(allowed=True):
        host = HostSite()
        recorder = {}
        hub = live(
            wrapper=lambda app: recorder.setdefault("r", Recorder(app)),
            secret_key="k" * 32,
            allowed_origins=(host.url,) if allowed else ("https://only-this.example",),
        )
        host.hub_url = hub.url
        started.append(host)
        return hub, host, recorder["r"]

    yield start
    for host in started:
        host.server.stop(timeout=1)


def widget(browser, title, script, *args):
    """Run `script` with `root` (the widget's shadow root) and `args` (arguments[1:])."""
    return browser.run(FIND_WIDGET + "return root && (function (root, args) {" + script + "})(root, arguments);",
                       title, *args)


def texts(browser, title):
    return widget(browser, title, "return Array.prototype.map.call(root.querySelectorAll('.ssehub-w-text'),"
                                  " function (p) { return p.textContent; });")


def status(browser, title):
    return widget(browser, title, "return root.querySelector('.ssehub-w-status').textContent;")


def shows(browser, title, expected, timeout=20):
    wait_for(lambda: texts(browser, title) == expected, timeout=timeout, interval=0.05,
             message=f"{title} to show {expected[-3:]}… (shows {texts(browser, title)})")


def chat_post(browser, author, text):
    widget(browser, "Chat", "root.querySelector('.ssehub-w-name').value = args[1];"
           "root.querySelector('.ssehub-w-message').value = args[2];"
           "root.querySelector('.ssehub-w-send').click(); return true;", author, text)


@pytest.mark.parametrize("transport, before_page", [("native", []), ("polyfill", [NO_EVENTSOURCE])])
def test_two_widgets_on_another_origin_show_events_in_order_once_over_one_connection(
    site, browsers, transport, before_page  # noqa: F811
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
    assert browser.run("return Array.prototype.filter.call(document.querySelectorAll('div'),"
                       " function (d) { return d.shadowRoot; }).length;") == 2
    assert recorder.queries and all(q.startswith("channel=news&channel=chat&") for q in recorder.queries)
    if transport == "native":
        assert len(recorder.queries) == 1
    else:
        assert all("ssehub_poll=1" in q for q in recorder.queries)
    # The host's li and p rules stay outside the widget.
    assert widget(browser, "Newsroom", "return getComputedStyle(root.querySelector('li')).fontSize;") != "40px"
    browser.screenshot(os.path.join(ARTIFACTS, f"widget-{transport}.png"))


def test_chat_widgets_talk_across_transports_and_show_markup_as_text(site, browsers):  # noqa: F811
    hub, host, _ = site()
    native, polyfill = browsers(), browsers(NO_EVENTSOURCE)
    for browser in (native, polyfill):
        browser.get(host.url + "/")
        wait_for(lambda: status(browser, "Chat") == "live", timeout=20, interval=0.05, message="chat live")
    chat_post(native, "Ada", "hello from Ada")
    hostile = '<img src=x onerror="window.pwned=1"></script><script>window.pwned=2</script>'
    chat_post(polyfill, "Bob <b>", hostile)
    for browser in (native, polyfill):
        shows(browser, "Chat", [hostile, "hello from Ada"])  # newest first
        authors = widget(browser, "Chat", "return Array.prototype.map.call(root.querySelectorAll('.ssehub-w-author'),"
                                          " function (a) { return a.textContent; });")
        assert authors == ["Bob <b>", "Ada"]
        assert widget(browser, "Chat", "return root.querySelectorAll('img, script, b').length;") == 0
        assert browser.run("return window.pwned === undefined;")
    native.screenshot(os.path.join(ARTIFACTS, "widget-chat-dark.png"))


def test_widget_chat_is_refused_with_a_reason_when_too_long_or_too_fast(site, browsers):  # noqa: F811
    hub, host, _ = site()
    browser = browsers()
    browser.get(host.url + "/")
    wait_for(lambda: status(browser, "Chat") == "live", timeout=20, interval=0.05, message="chat live")
    notice = "return root.querySelector('.ssehub-w-notice').textContent;"
    chat_post(browser, "Eve", "x" * 600)
    wait_for(lambda: widget(browser, "Chat", notice) == "a message is at most 500 characters; this one has 600",
             message="the length notice")
    chat_post(browser, "", "no name")
    wait_for(lambda: widget(browser, "Chat", notice) == "a name is 1-32 characters", message="the name notice")


def test_a_page_on_a_disallowed_origin_gets_nothing(site, browsers):  # noqa: F811
    hub, host, recorder = site(allowed=False)
    hub.publish("news", "secret")
    browser = browsers()
    browser.get(host.url + "/")
    wait_for(lambda: status(browser, "Newsroom") == "not available on this site", timeout=20, interval=0.05,
             message="the refusal to show")
    assert texts(browser, "Newsroom") == []
    chat_post(browser, "Mallory", "let me in")
    wait_for(lambda: widget(browser, "Chat", "return root.querySelector('.ssehub-w-notice').textContent;"),
             message="the post to fail")
    assert [e.data for e in hub.app.broker.recent("chat", 10)] == []
