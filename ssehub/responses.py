"""The JSON answers every route gives: a body, an error, and the broker-down 503 in one place."""

from __future__ import annotations

import json

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from .brokers import BrokerUnavailable, PublishOutcomeUnknown


def json_response(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def error_response(error: HTTPException) -> Response:
    """`{"error": ...}` with the exception's status and headers (Retry-After, WWW-Authenticate)."""
    response = json_response({"error": error.description}, error.code or 500)
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def broker_unavailable(error: BrokerUnavailable, channel: str, published: list[dict] | None = None) -> Response:
    """503 saying why, what of a batch went through, and whether the event
    on `channel` may have been stored after all (nothing is lost silently)."""
    body: dict[str, object] = {"error": f"broker unavailable: {error}"}
    if published is not None:
        body["published"] = published
    if isinstance(error, PublishOutcomeUnknown):
        body["unknown"] = {"channel": channel}
    return json_response(body, 503)
