"""The chat demo's rules: who a poster is, and what a chat message may be.

The demo's author comes from a signed cookie set by POST /chat/name, never
from the post itself, and is published as verified; a widget's author comes
with the post and is not (issue 9, item 5). Messages are plain text, checked
here and rendered as text by the pages. Chat goes only to CHAT_CHANNELS.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import unicodedata
from collections.abc import Mapping

from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.wrappers import Request

from . import bodies

COOKIE = "ssehub_chat_name"
COOKIE_MAX_AGE = 30 * 24 * 3600
MAX_NAME_CHARS = 32
MAX_TEXT_CHARS = 500
# Messages the demo shows on load; at most stream.MAX_HISTORY, or /events refuses.
HISTORY = 50
CHAT_EVENT = "chat"
MAX_BODY_BYTES = 16 * 1024
# A burst of 5, then one message every 2 seconds.
RATE_PER_SECOND = 0.5
RATE_BURST = 5
# Letters that draw nothing (default-ignorable, yet not format characters).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


def fields(request: Request) -> Mapping[str, object]:
    """The posted fields, from JSON or a form."""
    if request.mimetype == "application/json":
        return json_fields(request)
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        bodies.read(request, MAX_BODY_BYTES)  # request.form parses what this read
        return request.form.to_dict()
    raise UnsupportedMediaType("send Content-Type: application/json or a form")


def json_fields(request: Request) -> Mapping[str, object]:
    """A JSON object, whatever the content type: widgets post text/plain, which
    needs no CORS preflight and is all IE 8-9's XDomainRequest can send."""
    raw = bodies.read(request, MAX_BODY_BYTES)
    try:
        body = bodies.loads(raw)
    except ValueError:
        raise BadRequest('send a JSON object like {"channel": "chat", "author": "Ada", "text": "hi"}') from None
    if not isinstance(body, dict):
        raise BadRequest('send a JSON object like {"channel": "chat", "author": "Ada", "text": "hi"}')
    return body


def check_name(raw: object) -> str:
    """The name as shown: NFKC (fullwidth letters, ligatures and odd spaces
    become plain ones), spaces collapsed, trimmed. Refused when it holds what
    would hide or reorder letters, so one name cannot pass for another."""
    raw = raw if isinstance(raw, str) else ""
    if _has_control_characters(raw):
        raise BadRequest("a name cannot contain control characters")
    # Checked before NFKC, to name the character sent; NFKC makes none of these.
    hidden = next((char for char in raw if unicodedata.category(char) == "Cf" or char in _BLANK_LETTERS), None)
    if hidden is not None:
        raise BadRequest(f"a name cannot contain invisible or direction-changing characters (U+{ord(hidden):04X})")
    name = _normalized(raw)
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise BadRequest(f"a name is 1-{MAX_NAME_CHARS} characters")
    return name


def token_name(raw: str) -> str:
    """A name a token gives (its name or sub), checked like any other but
    shortened to fit rather than refused: its holder cannot change it."""
    name = _normalized(raw)
    if len(name) > MAX_NAME_CHARS:
        name = name[: MAX_NAME_CHARS - 3] + "..."
    return check_name(name)


def _normalized(raw: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", raw).split())


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
    return name_from_signed(token, key) if token else None


def signed_name(name: str, key: bytes) -> str:
    """The cookie value for `name`: signed with a timestamp, so the hub itself
    refuses it after COOKIE_MAX_AGE, whatever the browser keeps."""
    return _cookie_serializer(key).dumps(name)


def name_from_signed(token: str, key: bytes) -> str | None:
    """The name in a cookie value from signed_name, or None when it was not
    made with this key, was altered, or is older than COOKIE_MAX_AGE."""
    try:
        return _cookie_serializer(key).loads(token, max_age=COOKIE_MAX_AGE)
    except BadData:
        return None


def message_data(author: str, text: str, verified: bool, now: datetime.datetime | None = None) -> str:
    """The event data a chat message is published as; `verified` only when the
    author is the name the hub signed, so pages can mark the others."""
    moment = now or datetime.datetime.now(datetime.UTC)
    return json.dumps(
        {"author": author, "text": text, "time": moment.isoformat(timespec="seconds"), "verified": verified},
        ensure_ascii=False,
    )


def _cookie_serializer(key: bytes) -> URLSafeTimedSerializer:
    # The salt keeps this signature from being valid for anything else signed with SECRET_KEY.
    return URLSafeTimedSerializer(key, salt=COOKIE, signer_kwargs={"digest_method": hashlib.sha256})


def _has_control_characters(text: str) -> bool:
    # Only C0/C1 controls and lone surrogates: format characters such as the
    # zero-width joiner are parts of emoji.
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in text)
