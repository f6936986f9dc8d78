"""Cross-origin access to /events for the origins in ALLOWED_ORIGINS."""

from __future__ import annotations

from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response


def is_same_origin(request: Request, origin: str) -> bool:
    # Compare host only: behind a TLS-terminating router the scheme we see differs.
    return urlsplit(origin).netloc.lower() == request.host.lower()


def origin_allowed(request: Request, allowed: tuple[str, ...]) -> bool:
    """True when the request has no Origin, is same-origin, or its origin is allowed."""
    origin = request.headers.get("Origin")
    if origin is None or is_same_origin(request, origin):
        return True
    return "*" in allowed or origin.rstrip("/") in allowed


def cors_headers(request: Request) -> dict[str, str]:
    """Headers letting the requesting origin read the response (call once it is allowed)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def preflight(request: Request, methods: str, headers: str) -> Response:
    """The answer to a preflight (EventSource polyfills may send Last-Event-ID as a header)."""
    response = Response(status=204, headers={
        **cors_headers(request),
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": headers,
        "Access-Control-Max-Age": "600",
    })
    response.headers.remove("Content-Type")
    return response
