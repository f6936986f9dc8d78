"""Request ids (issue 14, item 7): Heroku's router and many proxies set
X-Request-ID; the hub keeps a well-formed one, makes one otherwise, returns it
on the response and puts it on every log line about the request."""

from __future__ import annotations

import re
import uuid

from . import log_redaction

HEADER = "X-Request-ID"
ENVIRON_KEY = "ssehub.request_id"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{1,200}")


def of(environ: dict) -> str:
    """This request's id, kept in the environ: the client's if well formed, else a new one."""
    if ENVIRON_KEY not in environ:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        kept = _WELL_FORMED.fullmatch(given) and log_redaction.redact(given) == given  # never a token
        environ[ENVIRON_KEY] = given if kept else uuid.uuid4().hex
    return environ[ENVIRON_KEY]


def returning_it(app):
    """WSGI middleware: X-Request-ID on every response of `app`."""

    def middleware(environ, start_response):
        request_id = of(environ)

        def start(status, headers, exc_info=None):
            return start_response(status, [*headers, (HEADER, request_id)], exc_info)

        return app(environ, start)

    return middleware
