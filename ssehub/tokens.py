"""Signed tokens: JWTs, verified by PyJWT, and what they let their holder read and publish.

Only the algorithms that fit the configured keys are accepted: HS256 with
JWT_SECRET, and RS256 or ES256 (whichever the key is) with JWT_PUBLIC_KEY. So
an unsigned token (`alg: none`), or an HS256 token signed with the public
key's text, is refused before PyJWT looks at its signature (issue 11).
"""

from __future__ import annotations

import dataclasses

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from . import expiry
from .channels import ChannelPatterns, check_pattern

# Clocks of the app that mints tokens and of the hub differ a little: exp and
# nbf count this much later. A token is usable until exp + leeway, and a
# stream on it ends then.
LEEWAY_SECONDS = 5
# Far above what a token with a few dozen patterns needs; bounds the work a garbage token costs.
MAX_TOKEN_CHARS = 8192
CLAIM = "ssehub"
MIN_SECRET_BYTES = 32
# Past any real expiry (the year 33658), and exactly representable as a float.
MAX_SECONDS = 10**12
MIN_RSA_BITS = 2048


class TokenError(ValueError):
    """Why a token cannot be used as sent (a 401): the message says it."""


@dataclasses.dataclass(frozen=True)
class Grant:
    """What a verified token allows, and until when."""

    subject: str | None
    # The display name chat shows for the holder (the claim's `name`).
    name: str | None
    subscribe: ChannelPatterns
    publish: ChannelPatterns
    # Epoch seconds after which the token no longer counts (exp + leeway); None: never.
    expires_at: float | None

    def expired(self) -> bool:
        return expiry.has_passed(self.expires_at)


def load_public_key(pem: str) -> tuple[str, rsa.RSAPublicKey | ec.EllipticCurvePublicKey]:
    """RS256 or ES256, and the key itself, from a PEM public key; ValueError
    saying what is wrong with it."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        raise ValueError("is not a PEM public key (-----BEGIN PUBLIC KEY----- ...)") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"is an RSA key of {key.key_size} bits; use at least {MIN_RSA_BITS}")
        return "RS256", key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256", key
    raise ValueError("must be an RSA key (RS256) or a P-256 EC key (ES256)")


class TokenVerifier:
    """Checks tokens against the configured keys and turns their claims into a Grant."""

    def __init__(
        self,
        secret: str | None = None,
        public_key: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ):
        # Loaded once: PyJWT would parse a PEM text again for every token.
        self._keys: dict[str, bytes | rsa.RSAPublicKey | ec.EllipticCurvePublicKey] = {}
        if secret:
            self._keys["HS256"] = secret.encode()
        if public_key:
            algorithm, loaded = load_public_key(public_key)
            self._keys[algorithm] = loaded
        if not self._keys:
            raise ValueError("a TokenVerifier needs a secret or a public key")
        self._audience = audience
        self._issuer = issuer

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def verify(self, token: str) -> Grant:
        """The token's grant, signature, audience, issuer and nbf checked; expiry
        is the caller's to check last (Grant.expired). Raises TokenError."""
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenError(f"the token is longer than {MAX_TOKEN_CHARS} characters")
        if not token.isascii():
            raise TokenError("the token is not a JWT (header.payload.signature, base64url)")
        if len(self._keys) == 1:
            # PyJWT refuses any other algorithm itself; reading the header first would parse the token twice.
            ((algorithm, key),) = self._keys.items()
        else:
            algorithm, key = self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"verify_exp": False, "verify_aud": self._audience is not None},
            )
        except jwt.InvalidAlgorithmError:
            self._key_for(token)  # raises, naming the token's algorithm
            raise TokenError("the token's algorithm is refused here") from None
        except jwt.InvalidSignatureError:
            raise TokenError("the token's signature does not match this hub's key") from None
        except jwt.DecodeError:
            raise TokenError("the token is not a JWT (header.payload.signature, base64url)") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("the token is not valid yet (its nbf or iat is in the future)") from None
        except jwt.InvalidAudienceError:
            raise TokenError(f"the token is not for this hub: its aud must include {self._audience!r}") from None
        except jwt.InvalidIssuerError:
            raise TokenError(f"the token is not from the expected issuer: its iss must be {self._issuer!r}") from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenError(f"the token lacks the {error.claim!r} claim") from None
        except jwt.InvalidTokenError as error:
            raise TokenError(f"the token is not valid: {error}") from None
        return _grant(claims)

    def _key_for(self, token: str) -> tuple[str, bytes | rsa.RSAPublicKey | ec.EllipticCurvePublicKey]:
        """The algorithm the token's header names and the key for it; TokenError when none fits."""
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.InvalidTokenError:
            raise TokenError("the token is not a JWT (header.payload.signature, base64url)") from None
        key = self._keys.get(algorithm) if isinstance(algorithm, str) else None
        if key is None or not isinstance(algorithm, str):
            accepted = " or ".join(self._keys)
            raise TokenError(f"tokens signed with {str(algorithm)[:20]!r} are refused here; sign with {accepted}")
        return algorithm, key


def _grant(claims: dict) -> Grant:
    granted = claims.get(CLAIM, {})
    if not isinstance(granted, dict):
        raise TokenError(f"the token's {CLAIM} claim must be an object")
    name = granted.get("name")
    if name is not None and not isinstance(name, str):
        raise TokenError(f"the token's {CLAIM}.name must be a string")
    expires = claims.get("exp")
    if expires is not None and not _is_time(expires):
        raise TokenError("the token's exp must be a number of seconds since 1970")
    subject = claims.get("sub")
    return Grant(
        subject=subject if isinstance(subject, str) else None,
        name=name,
        subscribe=_patterns(granted, "subscribe"),
        publish=_patterns(granted, "publish"),
        expires_at=None if expires is None else float(expires) + LEEWAY_SECONDS,
    )


def _is_time(value: object) -> bool:
    """A number of seconds a clock can hold: not a bool, NaN, infinite or absurdly large."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < MAX_SECONDS


def _patterns(granted: dict, field: str) -> ChannelPatterns:
    listed = granted.get(field, [])
    if not isinstance(listed, list):
        raise TokenError(f"the token's {CLAIM}.{field} must be a list of channel patterns")
    try:
        return ChannelPatterns(tuple(check_pattern(pattern) for pattern in listed))
    except ValueError as error:
        raise TokenError(f"the token's {CLAIM}.{field}: {error}") from None
