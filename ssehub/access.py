"""Who may read a channel: anyone for PUBLIC_CHANNELS, a token's holder for the rest.

Answers fit EventSource, which gives up for good on any status but 200
(issue 11, item 5): a request that can never succeed as sent is a 401 (no
token, or one that is not valid here) or a 403 (the token does not cover a
channel); an expired token is TokenExpired, answered with a 200 that tells
the client to fetch a new one. Checked in that order: signature, coverage, expiry.
"""

from __future__ import annotations

from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized
from werkzeug.wrappers import Request

from .channels import ChannelPatterns
from .config import Config
from .tokens import Grant, TokenError, TokenVerifier

# The cookie an app on the same site sets for the hub to read.
COOKIE = "ssehub_token"


class TokenExpired(Exception):
    """The token was good and covers the channels, but its time is up."""


def bearer_token(request: Request) -> str | None:
    """The token in `Authorization: Bearer <token>`, if there is one."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def presented_token(request: Request) -> str | None:
    """The token a request presents; with several, the first of: Authorization:
    Bearer (curl, fetch), the ssehub_token cookie, ?token= (EventSource)."""
    return bearer_token(request) or request.cookies.get(COOKIE) or request.args.get("token") or None


def unauthorized(reason: str) -> Unauthorized:
    return Unauthorized(reason, www_authenticate=WWWAuthenticate("bearer", {"realm": "ssehub"}))


class Access:
    """The public channel patterns, and the verifier for the rest (None without a JWT key)."""

    def __init__(self, config: Config):
        self.public = ChannelPatterns(config.readable_without_token)
        self.verifier = (
            TokenVerifier(config.jwt_secret, config.jwt_public_key, config.jwt_audience, config.jwt_issuer)
            if config.private_channels
            else None
        )

    def check(self, request: Request, channels: tuple[str, ...]) -> float | None:
        """When a stream on `channels` must end (its token's expiry; None: never).

        Raises Unauthorized, Forbidden or TokenExpired. A request for public
        channels only is never refused, whatever token it carries (a stale
        cookie must not break a public feed).
        """
        private = tuple(channel for channel in channels if not self.public.covers(channel))
        if not private:
            return None
        token = presented_token(request)
        if token is None:
            raise unauthorized(
                f"{private[0]!r} is a private channel: send a token as Authorization: Bearer <token>, "
                "the ssehub_token cookie, or ?token=<token>"
            )
        grant = self.verify(token)
        denied = grant.subscribe.first_not_covered(private)
        if denied is not None:
            raise Forbidden(f"this token does not let you read {denied!r}: its ssehub.subscribe must cover it")
        if grant.expired():
            raise TokenExpired()
        return grant.expires_at

    def verify(self, token: str) -> Grant:
        """The token's grant; Unauthorized when it cannot be used as sent."""
        if self.verifier is None:
            raise unauthorized("this hub verifies no tokens: set JWT_SECRET or JWT_PUBLIC_KEY")
        try:
            return self.verifier.verify(token)
        except TokenError as error:
            raise unauthorized(str(error)) from None
