"""Request framing the hub refuses before any app code runs: pywsgi's handler, stricter.

Given both Content-Length and Transfer-Encoding, pywsgi drops Content-Length
and keeps the connection open, so a proxy in front that framed the body by
Content-Length would pass a second, hidden request through (request
smuggling). RFC 9112 §6.3 lets a server refuse such a request; pywsgi then
answers 400 and closes the connection, as the RFC asks (server.TimedHandler's
JSON 400, as for any request it cannot parse: the app never sees it).
"""

from __future__ import annotations

from gevent.pywsgi import WSGIHandler


class StrictFramingHandler(WSGIHandler):
    def MessageClass(self, *args):
        """The request headers, parsed by pywsgi; ValueError (a 400) for ambiguous framing."""
        headers = super().MessageClass(*args)
        if "Content-Length" in headers and "Transfer-Encoding" in headers:
            raise ValueError("Content-Length with Transfer-Encoding (RFC 9112 §6.3, request smuggling)")
        return headers
