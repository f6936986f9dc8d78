"""Reading a POST /publish request into checked messages, or a 4xx saying what to fix.

Everything a publisher can get wrong is caught here, before the broker sees it:
the wire format can carry any data string, but not a CR, LF or NUL in an event
type, and not a lone surrogate anywhere.
"""

from __future__ import annotations

import dataclasses
import json

from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.wrappers import Request

from . import bodies, wire
from .channels import check_channel

MAX_BATCH = 100
MAX_EVENT_TYPE = 256
# Event types the hub itself sends (ssehub.reset); publishers may not forge them.
RESERVED_PREFIX = "ssehub."
_FIELDS = {"channel", "data", "event"}
_FORMS = {"application/x-www-form-urlencoded", "multipart/form-data"}


@dataclasses.dataclass(frozen=True)
class Message:
    channel: str
    data: str
    event: str | None = None


def _body_limit(max_event_bytes: int) -> int:
    """Largest request body: room for JSON escaping of one full-size event, or a batch."""
    return 8 * max_event_bytes + 65536


def read_messages(request: Request, max_event_bytes: int) -> tuple[list[Message], bool]:
    """The checked messages of one publish request and whether it was a JSON array.

    Raises an HTTPException saying what to fix.
    """
    if request.mimetype == "application/json":
        body = _json_body(bodies.read(request, _body_limit(max_event_bytes)))
        is_batch = isinstance(body, list)
        items: list[object] = body if isinstance(body, list) else [body]
    elif request.mimetype in _FORMS:
        bodies.read(request, _body_limit(max_event_bytes))  # request.form parses what this read
        is_batch = False
        items = [request.form.to_dict()]
    else:
        raise UnsupportedMediaType(
            "send Content-Type: application/json, application/x-www-form-urlencoded or multipart/form-data"
        )
    messages = [check_message(item, max_event_bytes, index if is_batch else None) for index, item in enumerate(items)]
    return messages, is_batch


def _json_body(raw: bytes) -> object:
    try:
        body = bodies.loads(raw)
    except bodies.NestedTooDeep as error:
        raise BadRequest(str(error)) from None
    except ValueError as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None
    if isinstance(body, list) and not body:
        raise BadRequest("the JSON array is empty; send at least one event")
    if isinstance(body, list) and len(body) > MAX_BATCH:
        raise RequestEntityTooLarge(f"at most {MAX_BATCH} events per request; split the array")
    return body


def check_message(item: object, max_event_bytes: int, index: int | None = None) -> Message:
    """One event of a publish, checked; raises an HTTPException saying what to fix."""
    where = f"event {index}: " if index is not None else ""
    if not isinstance(item, dict):
        raise BadRequest(f'{where}each event must be a JSON object like {{"channel": "news", "data": "hi"}}')
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise BadRequest(f"{where}unknown field {unknown[0]!r}; the fields are channel, data and event")
    try:
        channel = check_channel(item.get("channel"))
    except ValueError as error:
        missing = "channel" not in item
        raise BadRequest(where + ("channel is required" if missing else str(error))) from None
    if "data" not in item:
        raise BadRequest(f"{where}data is required (a string or any JSON value)")
    data = item["data"]
    if not isinstance(data, str):
        data = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    try:
        size = len(data.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadRequest(f"{where}data is not valid Unicode text (it has a lone surrogate)") from None
    if size > max_event_bytes:
        raise RequestEntityTooLarge(f"{where}data is {size} bytes; the limit is MAX_EVENT_BYTES={max_event_bytes}")
    return Message(channel, data, _event_type(item.get("event"), where))


def _event_type(event: object, where: str) -> str | None:
    if event is None:
        return None
    if not isinstance(event, str) or not 1 <= len(event) <= MAX_EVENT_TYPE:
        raise BadRequest(f"{where}event must be a string of 1-{MAX_EVENT_TYPE} characters")
    try:
        event.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{where}event is not valid Unicode text (it has a lone surrogate)") from None
    try:
        wire.check_field("event", event)
    except ValueError as error:
        raise BadRequest(f"{where}{error}") from None
    if event.startswith(RESERVED_PREFIX):
        raise BadRequest(f"{where}event types starting with {RESERVED_PREFIX!r} are reserved for the hub")
    return event
