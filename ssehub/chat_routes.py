"""The chat demo's and the widget's posting endpoints: who posts, what, and where.

With a token (issue 11), the author is the token's name (or sub), published as
verified, and the token must let its holder read the channel. Without one,
only public chat channels take posts: the demo's author comes from the
hub-signed cookie, a widget's with its post, published as not verified
(chat.py has the rules). Both publish through the app's one publish path.
The demo page reads its channel and limits from /chat/settings, so they are
written only here and in chat.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from werkzeug.exceptions import Forbidden, HTTPException, TooManyRequests, Unauthorized
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from . import chat, cors
from .access import COOKIE, Access, bearer_token, unauthorized
from .brokers import BrokerUnavailable
from .config import Config
from .cursor import EventId, format_id
from .ratelimit import RateLimiter
from .responses import broker_unavailable, error_response, json_response


class ChatRoutes:
    rules = [
        Rule("/chat/settings", endpoint="chat_settings", methods=["GET"]),
        Rule("/chat/name", endpoint="chat_name", methods=["GET", "POST"]),
        Rule("/chat/messages", endpoint="chat_message", methods=["POST"]),
        Rule("/widget/messages", endpoint="widget_message", methods=["POST", "OPTIONS"]),
    ]

    def __init__(self, config: Config, access: Access, publish: Callable[[str, str, str], EventId]):
        self._config = config
        self._access = access
        self._publish = publish
        self._secret_key = (config.secret_key or secrets.token_hex(32)).encode()
        self._limiter = RateLimiter(chat.RATE_PER_SECOND, chat.RATE_BURST)

    def on_chat_settings(self, request: Request) -> Response:
        """What the demo page needs to know: the channel it posts to and listens
        on (None: chat is off), and the limits the hub enforces."""
        channels = self._config.chat_channels
        return json_response(
            {
                "channel": channels[0] if channels else None,
                "event": chat.CHAT_EVENT,
                "max_name_chars": chat.MAX_NAME_CHARS,
                "max_text_chars": chat.MAX_TEXT_CHARS,
                "history": chat.HISTORY,
            }
        )

    def on_chat_name(self, request: Request) -> Response:
        if request.method == "GET":
            return json_response({"name": chat.name_from_cookie(request, self._secret_key)})
        _check_same_origin(request)
        name = chat.check_name(chat.fields(request).get("name"))
        response = json_response({"name": name})
        response.set_cookie(
            chat.COOKIE,
            chat.signed_name(name, self._secret_key),
            max_age=chat.COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=request.scheme == "https",
        )
        return response

    def on_chat_message(self, request: Request) -> Response:
        _check_same_origin(request)
        posted = chat.fields(request)
        default_channel = self._config.chat_channels[0] if self._config.chat_channels else None
        channel = self._chat_channel(posted.get("channel", default_channel))
        author = self._token_author(channel, self._demo_token(request, channel))
        if author is None:
            author = chat.name_from_cookie(request, self._secret_key)
        if author is None:
            raise Unauthorized("pick a name before posting")
        return self._post_chat(request, author, channel, posted.get("text"), verified=True)

    def on_widget_message(self, request: Request) -> Response:
        """Chat from widgets on other sites: the name comes with the post (no
        third-party cookies), checked like any name but published as not
        verified, since anyone can send it; or from the token the post carries
        (widgets with data-token-url). Never the publish token."""
        origin = request.headers.get("Origin")
        if origin is None or not cors.origin_allowed(request, self._config.allowed_origins):
            raise Forbidden("this site may not post to the hub; add its origin to ALLOWED_ORIGINS")
        if request.method == "OPTIONS":
            return cors.preflight(request, "POST", "Content-Type")
        try:
            posted = chat.json_fields(request)
            token = posted.get("token")
            if token is not None and not isinstance(token, str):
                raise unauthorized("token must be a string")
            channel = self._chat_channel(posted.get("channel"))
            author = self._token_author(channel, token)
            verified = author is not None
            if author is None:
                author = chat.check_name(posted.get("author"))
            response = self._post_chat(request, author, channel, posted.get("text"), verified)
        except HTTPException as error:
            # The page must be able to read why it was refused.
            response = error_response(error)
        response.headers.update(cors.cors_headers(request))
        return response

    def _chat_channel(self, channel: object) -> str:
        if not isinstance(channel, str) or channel not in self._config.chat_channels:
            raise Forbidden(f"chat is not open on {str(channel)[:60]!r}; CHAT_CHANNELS lists where it is")
        return channel

    def _token_author(self, channel: str, token: str | None) -> str | None:
        """The name a poster's token gives (its ssehub.name, else its sub), or
        None to post as without one, which only public channels allow. A
        token's holder must be allowed to read the channel (a private room's
        members talk in it). On a public channel a token that will not do
        is no token, as on /events: a stale one must not stop anyone posting."""
        public = self._access.public.covers(channel)
        if token is None or self._access.verifier is None:
            if not public:
                raise unauthorized(f"{channel!r} is a private channel: chat there needs a token")
            return None
        try:
            grant = self._access.verify(token)
            if not (public or grant.subscribe.covers(channel)):
                raise Forbidden(f"this token does not let you read {channel!r}, so it cannot post there")
            if grant.expired():
                raise unauthorized("the token has expired; fetch a fresh one")
            if not (grant.name or grant.subject):
                raise Forbidden("this token has no ssehub.name or sub to post as")
            return chat.token_name(grant.name or grant.subject or "")
        except HTTPException:
            if public:
                return None
            raise

    def _demo_token(self, request: Request, channel: str) -> str | None:
        """The token of a post from the demo page: Bearer, or the ssehub_token
        cookie, which the app sets and the hub cannot make SameSite, so a post
        carrying it must show it comes from the hub's own page (on a public
        channel, one that does not posts as without it)."""
        token = bearer_token(request)
        if token is None and COOKIE in request.cookies:
            site = request.headers.get("Sec-Fetch-Site")
            origin = request.headers.get("Origin")
            if site == "same-origin" or (origin is not None and cors.is_same_origin(request, origin)):
                return request.cookies[COOKIE]
            if not self._access.public.covers(channel):
                raise Forbidden("a post with the ssehub_token cookie must come from the hub's own page")
        return token

    def _post_chat(self, request: Request, author: str, channel: str, text: object, verified: bool) -> Response:
        text = chat.check_text(text)
        client = request.remote_addr or "unknown"
        if not self._limiter.allow(client):
            wait = self._limiter.retry_after(client)
            raise TooManyRequests(f"slow down: wait {wait} s before posting again", retry_after=wait)
        try:
            event_id = self._publish(channel, chat.message_data(author, text, verified), chat.CHAT_EVENT)
        except BrokerUnavailable as error:
            return broker_unavailable(error, channel)
        return json_response({"id": format_id(event_id), "channel": channel}, 201)


def _check_same_origin(request: Request) -> None:
    """Refuse cross-site posts that carry the chat cookie (CSRF)."""
    origin = request.headers.get("Origin")
    if origin is not None and not cors.is_same_origin(request, origin):
        raise Forbidden("chat posts must come from the hub's own page")
