"""Private channels in headless Chromium (issue 11, item 7): the loader with a
tokenUrl on another site's page, natively and long-polling, and the widget
with data-token-url."""

import json
import time

import gevent
import pytest

from tests.browser import NO_EVENTSOURCE
from tests.conftest import wait_for
from tests.host_site import HostSite
from tests.tokens import SECRET, mint

TOKEN_LIFETIME = 5

LOADER_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>An app with private channels</title></head>
<body>
<script src="{hub}/loader.js"></script>
<script>
  window.received = [];
  window.connections = 0;
  ssehub.open("/events?channel=user.42", function (source, transport) {{
    window.connections += 1;
    window.transport = transport;
    source.addEventListener("message", function (event) {{ window.received.push(event.data); }}, false);
    source.onopen = function () {{ window.opened = true; }};
  }}, {{tokenUrl: "/app/ssehub-token"}});
</script>
</body></html>
"""

COOKIE_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>An app that sets the hub's cookie</title></head>
<body>
<script src="{hub}/loader.js"></script>
<script>
  window.received = [];
  ssehub.open("/events?channel=user.42", function (source) {{
    source.addEventListener("message", function (event) {{ window.received.push(event.data); }}, false);
    source.onopen = function () {{ window.opened = true; }};
  }}, {{withCredentials: true}});
</script>
</body></html>
"""

WIDGET_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>A team room</title></head>
<body>
<script async src="{hub}/widget.js" data-channel="team.7" data-mode="chat" data-title="Team"
        data-token-url="/app/ssehub-token"></script>
</body></html>
"""


class AppSite(HostSite):
    """Another site's app: its page, and the endpoint that mints its users' tokens."""

    def __init__(self, page: str, claims: dict):
        self.claims = claims
        self.tokens_minted = 0
        # Hand out a token that has already expired first.
        self.expired_first = False
        self.sets_cookie = False
        self.lifetime = TOKEN_LIFETIME
        super().__init__(page)

    def app(self, environ, start_response):
        if environ["PATH_INFO"] != "/app/ssehub-token":
            return super().app(environ, start_response)
        lifetime = -60 if self.expired_first and not self.tokens_minted else self.lifetime
        self.tokens_minted += 1
        body = json.dumps({"token": mint(lifetime=lifetime, **self.claims)})
        start_response("200 OK", [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
        return [body.encode()]

    def page_headers(self) -> list[tuple[str, str]]:
        if not self.sets_cookie:
            return []
        # For the host, so it reaches the hub on another port of it too (a sibling origin).
        return [("Set-Cookie", f"ssehub_token={mint(**self.claims)}; Path=/; HttpOnly; SameSite=Lax")]


@pytest.fixture
def visit(live, browsers):
    """Open `page` of a new app site, in a new browser, beside a hub whose
    channels are private and which lets that site in."""
    sites = []

    def start(page, transport="native", hub_settings=None, claims=None, **site_settings):
        app_site = AppSite(page, {"ssehub": claims or {"subscribe": ["user.42"]}})
        sites.append(app_site)
        for name, value in site_settings.items():
            setattr(app_site, name, value)
        hub = live(jwt_secret=SECRET, allowed_origins=(app_site.url,), **(hub_settings or {}))
        app_site.hub_url = hub.url
        browser = browsers(NO_EVENTSOURCE) if transport == "long-poll" else browsers()
        browser.get(f"{app_site.url}/")
        return app_site, hub, browser

    yield start
    for app_site in sites:
        app_site.stop()


@pytest.mark.parametrize("transport", ["native", "long-poll"])
def test_the_loader_receives_every_event_across_token_refreshes(visit, transport):
    """Tokens live 5 s; 30 events published over 20 s arrive in order, once."""
    app_site, hub, browser = visit(LOADER_PAGE, transport)
    browser.wait_until("window.opened === true", message="the stream to open")
    assert browser.run("return window.transport;") == transport

    sent = []
    started = time.monotonic()
    for n in range(30):
        gevent.sleep(max(0.0, started + n * 20 / 30 - time.monotonic()))
        sent.append(f"event {n}")
        hub.publish("user.42", sent[-1])
    wait_for(lambda: len(browser.run("return window.received;")) >= 30, timeout=15, message="all 30 events")
    gevent.sleep(0.5)  # anything repeated would arrive now
    assert browser.run("return window.received;") == sent
    # Refreshed before each token expired, and each refresh moved the stream.
    assert app_site.tokens_minted >= 5
    assert browser.run("return window.connections;") >= 5


def test_an_idle_native_stream_moves_to_a_new_token_when_the_hub_says_it_expired(visit):
    """With no event yet, native EventSource does not say where it stands, so
    the hub's ssehub.token-expired (carrying the position) moves the stream."""
    _, hub, browser = visit(LOADER_PAGE)
    browser.wait_until("window.connections === 2", timeout=TOKEN_LIFETIME * 3, message="a second connection")
    hub.publish("user.42", "after the move")
    browser.wait_until("window.received.length === 1", message="the event")
    assert browser.run("return window.received;") == ["after the move"]


@pytest.mark.parametrize("transport", ["native", "long-poll"])
def test_a_token_that_had_expired_is_replaced(visit, transport):
    app_site, hub, browser = visit(LOADER_PAGE, transport, expired_first=True)
    browser.wait_until("window.connections === 2", message="a connection with a fresh token")
    hub.publish("user.42", "made it")
    browser.wait_until("window.received.length === 1", message="the event")
    assert 2 <= app_site.tokens_minted <= 3  # replaced once, not in a loop


def test_a_token_that_lasts_a_month_is_not_fetched_again_at_once(visit):
    """A month is past what setTimeout can wait (it keeps 32 bits): capped, not fired at once."""
    app_site, hub, browser = visit(LOADER_PAGE, lifetime=30 * 24 * 3600)
    browser.wait_until("window.opened === true", message="the stream to open")
    hub.publish("user.42", "one")
    browser.wait_until("window.received.length === 1", message="the event")
    gevent.sleep(1)
    assert (app_site.tokens_minted, browser.run("return window.connections;")) == (1, 1)


def test_a_sibling_origin_reads_with_the_cookie_it_set(visit):
    _, hub, browser = visit(COOKIE_PAGE, sets_cookie=True)
    browser.wait_until("window.opened === true", message="the stream to open with the cookie")
    hub.publish("user.42", "by cookie")
    browser.wait_until("window.received.length === 1", message="the event")


def test_the_widget_chats_as_the_name_in_its_token(visit):
    _, hub, browser = visit(
        WIDGET_PAGE,
        hub_settings={"chat_channels": ("team.7",), "public_channels": ("lobby",)},
        claims={"subscribe": ["team.7"], "name": "Ada Lovelace"},
    )
    host = "Array.prototype.filter.call(document.querySelectorAll('div'), function (d) { return d.shadowRoot; })[0]"
    browser.wait_until(f"{host}", message="the widget")
    root = f"{host}.shadowRoot"
    browser.wait_until(f"{root}.querySelector('.ssehub-w-status').textContent === 'live'")
    browser.wait_until(f"{root}.querySelector('.ssehub-w-name').textContent === 'Ada Lovelace'")
    browser.run(
        f"var root = {root}; root.querySelector('.ssehub-w-message').value = 'hello team';"
        "root.querySelector('.ssehub-w-send').click();"
    )
    browser.wait_until(f"{root}.querySelectorAll('.ssehub-w-item').length === 1", message="the message shown")
    shown = browser.run(
        f"var item = {root}.querySelector('.ssehub-w-item');"
        "return [item.querySelector('.ssehub-w-author').textContent, !!item.querySelector('.ssehub-w-guest'),"
        " item.querySelector('.ssehub-w-text').textContent];"
    )
    assert shown == ["Ada Lovelace", False, "hello team"]
    (message,) = [json.loads(event.data) for event in hub.app.broker.recent("team.7", 10)]
    assert (message["author"], message["verified"]) == ("Ada Lovelace", True)
