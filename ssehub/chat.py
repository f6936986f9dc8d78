"""The chat demo's rules: who a poster is, and what a chat message may be.

The author comes from a signed cookie set by POST /chat/name, never from the
post itself; messages are plain text, checked here and rendered as text by
the page. Chat goes only to the channels in CHAT_CHANNELS.
"""

from __future__ import annotations

import datetime
import json
import unicodedata

from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.wrappers import Request

from .signing import unsign

COOKIE = "ssehub_chat_name"
COOKIE_MAX_AGE = 30 * 24 * 3600
MAX_NAME_CHARS = 32
MAX_TEXT_CHARS = 500
CHAT_EVENT = "chat"
MAX_BODY_BYTES = 16 * 1024
# A burst of 5, then one message every 2 seconds.
RATE_PER_SECOND = 0.5
RATE_BURST = 5


def fields(request: Request) -> dict[str, object]:
    """The posted fields, from JSON or a form."""
    if request.mimetype == "application/json":
        return json_fields(request)
    request.max_content_length = MAX_BODY_BYTES
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.to_dict()
    raise UnsupportedMediaType("send Content-Type: application/json or a form")


def json_fields(request: Request) -> dict[str, object]:
    """A JSON object, whatever the content type: widgets post text/plain, which
    needs no CORS preflight and is all IE 8-9's XDomainRequest can send."""
    request.max_content_length = MAX_BODY_BYTES
    try:
        body = json.loads(request.get_data(cache=False))
    except ValueError:
        raise BadRequest('send a JSON object like {"channel": "chat", "author": "Ada", "text": "hi"}') from None
    if not isinstance(body, dict):
        raise BadRequest('send a JSON object like {"channel": "chat", "author": "Ada", "text": "hi"}')
    return body


def check_name(raw: object) -> str:
    name = " ".join(raw.split()) if isinstance(raw, str) else ""
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise BadRequest(f"a name is 1-{MAX_NAME_CHARS} characters")
    if _has_control_characters(name):
        raise BadRequest("a name cannot contain control characters")
    return name


def check_text(raw: object) -> str:
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise BadRequest("write a message first")
    if len(text) > MAX_TEXT_CHARS:
        raise RequestEntityTooLarge(f"a message is at most {MAX_TEXT_CHARS} characters; this one has {len(text)}")
    if _has_control_characters(text.replace("\n", "").replace("\t", "")):
        raise BadRequest("a message cannot contain control characters")
    return text


def name_from_cookie(request: Request, key: bytes) -> str | None:
    token = request.cookies.get(COOKIE)
    return unsign(token, key) if token else None


def message_data(author: str, text: str, now: datetime.datetime | None = None) -> str:
    """The event data a chat message is published as."""
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    return json.dumps({"author": author, "text": text, "time": moment.isoformat(timespec="seconds")}, ensure_ascii=False)


def _has_control_characters(text: str) -> bool:
    # Only C0/C1 controls and lone surrogates: format characters such as the
    # zero-width joiner are parts of emoji.
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in text)
