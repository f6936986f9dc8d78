"""Idempotency-Key on POST /publish (issue 14, item 3): a retried publish is stored once.

The broker keeps each stored event's key with its id for IDEMPOTENCY_SECONDS,
atomically with the append (ssehub.lua; memory.py), so even a publish whose
answer was lost can be retried safely. A key is scoped to the credential that
sent it; a batch's events get one key each (the key and the event's place),
all with the fingerprint of the whole batch, so the same key with another
body is refused (422) before anything is stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Request

from .publish import Message

HEADER = "Idempotency-Key"
# How long a key is remembered; ssehub.lua has the same figure.
IDEMPOTENCY_SECONDS = 900
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@dataclasses.dataclass(frozen=True)
class Idempotency:
    key: str  # scoped and hashed: what the broker stores the id under
    fingerprint: str  # of the whole request: another body under the same key is a conflict


def idempotency_keys(request: Request, scope: str, messages: list[Message]) -> list[Idempotency | None]:
    """One Idempotency per message, or Nones without the header; raises BadRequest for a malformed key."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return [None] * len(messages)
    if not _KEY.fullmatch(raw):
        raise BadRequest(f"{HEADER} must be 1-255 visible ASCII characters (no spaces)")
    body = json.dumps([[message.channel, message.data, message.event] for message in messages])
    fingerprint = hashlib.sha256(body.encode()).hexdigest()
    return [
        Idempotency(hashlib.sha256(f"{scope}\n{raw}\n{index}".encode()).hexdigest(), fingerprint)
        for index in range(len(messages))
    ]
