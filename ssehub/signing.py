"""Tamper-proof cookie values: HMAC-SHA256 with SECRET_KEY, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(value: str, key: bytes) -> str:
    payload = _encode(value.encode("utf-8"))
    return f"{payload}.{_mac(payload, key)}"


def unsign(token: str, key: bytes) -> str | None:
    """The signed value, or None when the token was not made with this key."""
    payload, _, mac = token.rpartition(".")
    if not payload or not hmac.compare_digest(mac, _mac(payload, key)):
        return None
    try:
        return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8")
    except ValueError:
        return None


def _mac(payload: str, key: bytes) -> str:
    return _encode(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
