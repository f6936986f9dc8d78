"""Believing a proxy's forwarding headers only when the proxy is one we trust.

Werkzeug's ProxyFix does the parsing; this decides, per request, whether the
peer is in TRUSTED_PROXIES. Untrusted forwarding headers are left alone (and
ignored), so a client cannot pick its own address.
"""

from __future__ import annotations

import ipaddress
import logging

from werkzeug.middleware.proxy_fix import ProxyFix

logger = logging.getLogger(__name__)

# Headers a proxy adds; their presence means the request did not come straight from its sender.
FORWARDING_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_X_FORWARDED_HOST")


def is_forwarded(environ: dict) -> bool:
    return any(name in environ for name in FORWARDING_HEADERS)


class TrustedProxies:
    """WSGI middleware: ProxyFix (one hop) for requests whose peer is trusted."""

    def __init__(self, app, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]):
        self._app = app
        self._fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1)
        self._networks = networks
        self._warned = False

    def __call__(self, environ, start_response):
        if self._trusted(environ.get("REMOTE_ADDR")):
            return self._fixed(environ, start_response)
        if not self._warned and "HTTP_X_FORWARDED_FOR" in environ:
            self._warned = True
            logger.warning(
                "a request from %s carries X-Forwarded-For, which is ignored: if %s is your proxy or "
                "PaaS router, add it to TRUSTED_PROXIES so limits and logs see real clients",
                environ.get("REMOTE_ADDR"),
                environ.get("REMOTE_ADDR"),
            )
        return self._app(environ, start_response)

    def _trusted(self, address: str | None) -> bool:
        if not self._networks:
            return False
        try:
            peer = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(peer in network for network in self._networks)
