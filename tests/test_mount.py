"""Issue 14, item 4: the hub mounted at /hub in a Flask app (examples/flask_app.py):
the widget, the loader's polyfill, the chat demo and the API all under the prefix."""

import os
import subprocess
import sys

import pytest

from tests.browser import NO_EVENTSOURCE
from tests.conftest import HubClient, wait_for
from tests.redis_server import free_port
from tests.service_process import ROOT
from tests.sse import StreamReader
from tests.test_widget import status, texts


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The example app on a free port: the shop at /, ssehub at /hub."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("shop") / "shop.log", "w+")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": ROOT, "HOST": "127.0.0.1", "PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "examples/flask_app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    client = HubClient()
    client.port = port
    try:
        wait_for(lambda: "ssehub at" in open(log.name).read() or process.poll() is not None, timeout=20)
        assert process.poll() is None, open(log.name).read()
        yield client
    finally:
        process.kill()
        process.wait()
        log.close()


def test_the_api_and_the_files_answer_under_the_prefix(shop):
    assert shop.request_raw("GET", "/hub/healthz")[0] == 200
    for path in ("/hub/", "/hub/loader.js", "/hub/widget.js", "/hub/chat.js", "/hub/chat/settings",
                 "/hub/polyfills/event-source-polyfill/1.0.31/eventsource.js"):  # fmt: skip
        assert shop.request_raw("GET", path)[0] == 200, path
    status, _ = shop.request_raw("GET", "/hub")
    assert status == 308  # to /hub/, which the page's relative links need
    reader = StreamReader("127.0.0.1", shop.port, "/hub/events?channel=orders")
    reader.read_until(lambda r: r.parser.last_event_id)
    status, reply = shop.request("POST", "/orders")
    assert status == 201 and [m.last_event_id for m in reader.take(1)] == [reply["event"]]
    reader.close()


@pytest.mark.parametrize("transport", ["native", "long-poll"])
def test_the_widget_on_the_shops_page_shows_an_order_published_from_a_view(shop, browsers, transport):
    browser = browsers(NO_EVENTSOURCE) if transport == "long-poll" else browsers()
    browser.get(f"http://127.0.0.1:{shop.port}/")
    wait_for(lambda: status(browser, "Orders") == "live", timeout=20, message="the widget live")
    code, reply = shop.request("POST", "/orders")
    assert code == 201
    placed = f"order {reply['order']} placed"
    wait_for(lambda: placed in (texts(browser, "Orders") or []), timeout=20, message=f"the widget to show {placed}")


def test_the_chat_demo_works_under_the_prefix(shop, browsers):
    browser = browsers()
    browser.get(f"http://127.0.0.1:{shop.port}/hub")  # redirected to /hub/
    browser.wait_until("document.getElementById('status').className.indexOf('status-live') >= 0")
    browser.run("document.getElementById('name').value = 'Ada';")
    browser.run("document.querySelector('#name-form button').click();")
    browser.wait_until("!document.getElementById('message-form').classList.contains('is-hidden')")
    browser.run("document.getElementById('text').value = 'hello from under /hub';")
    browser.run("document.querySelector('#message-form button').click();")
    browser.wait_until("document.getElementById('messages').textContent.indexOf('hello from under /hub') >= 0")
