"""Static files: the demo, the loader and the vendored polyfill, never outside their folders."""

from __future__ import annotations

import os

from werkzeug.utils import send_from_directory
from werkzeug.wrappers import Request, Response

PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _folder(name: str) -> str:
    """Inside the installed package (a wheel carries them there), else beside it in a checkout."""
    installed = os.path.join(PACKAGE, name)
    return installed if os.path.isdir(installed) else os.path.join(os.path.dirname(PACKAGE), name)


FRONTEND = _folder("frontend")
POLYFILLS = _folder("polyfills")

# Pages say which scripts may run: only ours, never inline (defence in depth
# behind rendering every message as text).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def serve(request: Request, directory: str, path: str, max_age: int) -> Response:
    """The file at `path` under `directory` (werkzeug's safe_join refuses `..`), or 404."""
    response = send_from_directory(directory, path, request.environ, max_age=max_age)
    response.headers["X-Content-Type-Options"] = "nosniff"
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = PAGE_POLICY
        response.cache_control.no_cache = True
    return response


def bundle(request: Request, directory: str, names: tuple[str, ...], max_age: int) -> Response:
    """Several scripts as one response, for a one-tag embed."""
    parts = []
    for name in names:
        with open(os.path.join(directory, name), "rb") as source:
            parts.append(source.read())
    response = Response(b"\n".join(parts), mimetype="text/javascript")
    response.cache_control.public = True
    response.cache_control.max_age = max_age
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.add_etag()
    return response.make_conditional(request)
