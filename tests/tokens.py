"""Tokens for the tests, minted with PyJWT from keys made here (never a fixed key)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from functools import cache

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SECRET = secrets.token_urlsafe(32)


def mint(
    subscribe: list[str] | None = None,
    publish: list[str] | None = None,
    lifetime: float = 300,
    key: object = SECRET,
    algorithm: str = "HS256",
    **claims: object,
) -> str:
    """A token for `subscribe` and `publish` patterns that expires `lifetime` seconds from now
    (a claim given as None is left out)."""
    now = time.time()
    body: dict[str, object] = {"sub": "user-42", "iat": int(now), "exp": now + lifetime, **claims}
    body = {name: value for name, value in body.items() if value is not None}
    granted = {name: value for name, value in (("subscribe", subscribe), ("publish", publish)) if value is not None}
    body.setdefault("ssehub", granted)
    return jwt.encode(body, key, algorithm=algorithm)  # type: ignore[arg-type]


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def unsigned(claims: dict) -> str:
    """A token with `alg: none` (which PyJWT will not verify; an attacker's)."""
    return f"{_part({'alg': 'none', 'typ': 'JWT'})}.{_part(claims)}."


def hs256_with(key_text: str, claims: dict) -> str:
    """An HS256 token whose secret is `key_text`: the public key's PEM, in the classic confusion attack."""
    signing_input = f"{_part({'alg': 'HS256', 'typ': 'JWT'})}.{_part(claims)}"
    signature = hmac.new(key_text.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _part(value: dict) -> str:
    return _b64(json.dumps(value).encode())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
