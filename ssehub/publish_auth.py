"""Who may publish: the bearer PUBLISH_TOKEN, or without one, local requests
only; or a signed token (JWT) to the channels it names.

"Local" is deliberately narrow (issue 9): behind nginx or a PaaS router every
client arrives from 127.0.0.1, and any web page a developer opens can post
to a hub on their machine.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
from urllib.parse import urlsplit

from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized
from werkzeug.wrappers import Request

from . import cors
from .access import Access, bearer_token, unauthorized
from .channels import ChannelPatterns
from .proxies import is_forwarded

EVERY_CHANNEL = ChannelPatterns(("*",))


@dataclasses.dataclass(frozen=True)
class Publisher:
    channels: ChannelPatterns  # what it may publish to
    scope: str  # who it is, for its idempotency keys: "token", "local" or "jwt:<sub>"


def authorize(request: Request, token: str | None, access: Access) -> Publisher:
    """Who publishes and to which channels (issue 11, item 6): every one
    with the bearer PUBLISH_TOKEN (compared in constant time) or, when none is
    set, from this machine; a JWT's ssehub.publish patterns, from anywhere."""
    bearer = bearer_token(request)
    matches_token = bearer is not None and token is not None and hmac.compare_digest(bearer.encode(), token.encode())
    if bearer is not None and not matches_token and access.verifier is not None and bearer.count(".") == 2:
        grant = access.verify(bearer)
        if grant.expired():
            raise unauthorized("the token has expired; publish with a fresh one")
        return Publisher(grant.publish, f"jwt:{grant.subject or ''}")
    if token is None:
        reason = not_local_reason(request)
        if reason is not None:
            raise Forbidden(
                f"without PUBLISH_TOKEN only requests made directly on the hub's machine may publish, "
                f"and {reason}; set PUBLISH_TOKEN and send Authorization: Bearer <token>"
            )
        return Publisher(EVERY_CHANNEL, "local")
    if not matches_token:
        raise Unauthorized(
            "send the publish token as Authorization: Bearer <PUBLISH_TOKEN>",
            www_authenticate=WWWAuthenticate("bearer", {"realm": "ssehub publish"}),
        )
    return Publisher(EVERY_CHANNEL, "token")


def not_local_reason(request: Request) -> str | None:
    """Why a request may not publish without a token (issue 9), or None.

    Local means: from a loopback address, to a loopback host name (a DNS
    rebinding page names its own host), through no proxy (behind nginx every
    client arrives from 127.0.0.1), and not sent by a web page of another site.
    """
    if not _is_loopback(request.remote_addr):
        return f"this one came from {request.remote_addr}"
    if is_forwarded(request.environ):
        return "this one came through a proxy (it has forwarding headers)"
    if not _is_local_host(request.host):
        return f"this one was addressed to {request.host[:80]!r}, not localhost"
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return "this one was sent by a web page of another site (Sec-Fetch-Site)"
    origin = request.headers.get("Origin")
    if origin is not None and not cors.is_same_origin(request, origin):
        return f"this one was sent by a web page of {origin[:80]!r}"
    return None


def _is_local_host(host: str) -> bool:
    name = (urlsplit(f"//{host}").hostname or "").lower()
    return name == "localhost" or name.endswith(".localhost") or _is_loopback(name)


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False
