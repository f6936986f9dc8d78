"""Headless Chromium for tests, driven through chromedriver's WebDriver HTTP API.

Debian's chromium and chromium-driver; no tool downloads a browser. Scripts
can be injected before any page script runs (DevTools' addScriptToEvaluate-
OnNewDocument), which is how tests take EventSource or fetch away.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

from tests.redis_server import free_port

# Screenshots for a person to look at.
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test-artifacts")
# Scripts for Browser.before_page_scripts: the old browsers the polyfill is for.
NO_EVENTSOURCE = "delete window.EventSource;"
NO_FETCH = "delete window.fetch;"

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=900,760",
]


class Driver:
    """One chromedriver process; each Browser from it is a separate Chromium."""

    def __init__(self):
        for path in (CHROMIUM, CHROMEDRIVER):
            if not os.path.exists(path):
                raise RuntimeError(f"{path} is missing: apt-get install chromium chromium-driver (.ci/run does this)")
        self.port = free_port()
        self.process = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.call("GET", "/status")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("chromedriver did not start") from None
                time.sleep(0.05)

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                return json.loads(reply.read())["value"]
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"WebDriver {method} {path}: {error.read()[:500]!r}") from None

    def browser(self) -> Browser:
        return Browser(self)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class Browser:
    def __init__(self, driver: Driver):
        self.driver = driver
        self.profile = tempfile.mkdtemp(prefix="ssehub-chromium-")
        capabilities = {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={self.profile}"]},
        }
        session = driver.call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self.session = f"/session/{session['sessionId']}"

    def before_page_scripts(self, source: str) -> None:
        """Run `source` in every new document before the page's own scripts."""
        self.driver.call(
            "POST",
            f"{self.session}/goog/cdp/execute",
            {"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": source}},
        )

    def get(self, url: str) -> None:
        self.driver.call("POST", f"{self.session}/url", {"url": url})

    def run(self, script: str, *args: object) -> object:
        """Run a function body in the page and return its value."""
        return self.driver.call("POST", f"{self.session}/execute/sync", {"script": script, "args": list(args)})

    def wait_until(self, expression: str, timeout: float = 15, message: str = "") -> object:
        deadline = time.monotonic() + timeout
        while True:
            value = self.run(f"return ({expression});")
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {message or expression}")
            time.sleep(0.05)

    def screenshot(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as image:
            image.write(base64.b64decode(self.driver.call("GET", f"{self.session}/screenshot")))

    def quit(self) -> None:
        try:
            self.driver.call("DELETE", self.session)
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
