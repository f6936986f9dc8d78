"""Cross-origin access to /events for the origins in ALLOWED_ORIGINS."""

from __future__ import annotations

import re

from werkzeug.wrappers import Request, Response

# One serialised origin (RFC 6454 §6.2), scheme://host[:port], or "null". A folded
# header, a list, a path or a stray character is not one: it is never allowed
# nor echoed back (issue 9).
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://(?P<host>(?:[a-z0-9._~-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?)/?|null", re.I)


def is_same_origin(request: Request, origin: str) -> bool:
    # Compare host only: behind a TLS-terminating router the scheme we see differs.
    match = _ORIGIN.fullmatch(origin)
    host = match["host"] if match else None  # None for "null" too
    return host is not None and host.lower() == request.host.lower()


def origin_allowed(request: Request, allowed: tuple[str, ...]) -> bool:
    """True when the request has no Origin, is same-origin, or its origin is allowed;
    never when the Origin header is not one origin."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if _ORIGIN.fullmatch(origin) is None:
        return False
    return is_same_origin(request, origin) or "*" in allowed or origin.rstrip("/") in allowed


def cors_headers(request: Request) -> dict[str, str]:
    """Headers letting the requesting origin read the response (call once it is allowed)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def credentials_headers(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """Lets a page of an origin that ALLOWED_ORIGINS names send its cookies
    (EventSource's withCredentials: the ssehub_token cookie); never for `*`."""
    origin = request.headers.get("Origin")
    if origin is None or origin.rstrip("/") not in allowed:
        return {}
    return {"Access-Control-Allow-Credentials": "true"}


def preflight(request: Request, methods: str, headers: str) -> Response:
    """The answer to a preflight (EventSource polyfills may send Last-Event-ID as a header)."""
    response = Response(
        status=204,
        headers={
            **cors_headers(request),
            "Access-Control-Allow-Methods": methods,
            "Access-Control-Allow-Headers": headers,
            "Access-Control-Max-Age": "600",
        },
    )
    response.headers.remove("Content-Type")
    return response
