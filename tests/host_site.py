"""A web site on another origin (another port of 127.0.0.1) whose page uses the hub."""

from __future__ import annotations

import gevent.pool
from gevent.pywsgi import WSGIServer


class HostSite:
    """Serves `page` (a template with {hub} for the hub's URL, set later) at every path."""

    def __init__(self, page: str):
        self.page = page
        self.hub_url: str | None = None
        self.server = WSGIServer(("127.0.0.1", 0), self.app, spawn=gevent.pool.Pool(), log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def app(self, environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), *self.page_headers()])
        return [self.page.format(hub=self.hub_url).encode()]

    def page_headers(self) -> list[tuple[str, str]]:
        """Headers the page comes with, besides its type."""
        return []

    def stop(self) -> None:
        self.server.stop(timeout=1)
