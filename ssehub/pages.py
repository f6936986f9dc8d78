"""The files a browser loads: the chat demo, the loader, the widget and the vendored polyfill."""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from . import static

# One file per script tag: the loader, the DOM helpers both pages share, then
# the page's own code. tokens.js comes only to pages that open private channels.
BUNDLES = {name: ("loader.js", "dom.js", name) for name in ("chat.js", "widget.js")}


class Pages:
    rules = [
        Rule("/", endpoint="index", methods=["GET"]),
        Rule("/<any(loader.js, tokens.js, chat.css):name>", endpoint="frontend", methods=["GET"]),
        Rule("/<any(chat.js, widget.js):name>", endpoint="bundle", methods=["GET"]),
        Rule("/polyfills/<path:path>", endpoint="polyfill", methods=["GET"]),
    ]

    def on_index(self, request: Request) -> Response:
        return static.serve(request, static.FRONTEND, "index.html", max_age=0)

    def on_frontend(self, request: Request, name: str) -> Response:
        return static.serve(request, static.FRONTEND, name, max_age=300)

    def on_bundle(self, request: Request, name: str) -> Response:
        return static.bundle(request, static.FRONTEND, BUNDLES[name], max_age=300)

    def on_polyfill(self, request: Request, path: str) -> Response:
        # The path names the pinned version, so it never changes.
        response = static.serve(request, static.POLYFILLS, path, max_age=365 * 24 * 3600)
        response.cache_control.immutable = True
        return response
