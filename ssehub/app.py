"""The HTTP layer: Werkzeug routes over the hub and the broker (a bare WSGI app).

Every request is checked before the first byte, so clients get real status
codes; every error is JSON `{"error": ...}` with a 4xx, never a 500.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Generator, Iterable, Iterator

import gevent.monkey
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, InternalServerError, MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from . import cors, direct, expiry, log_redaction, request_ids
from .access import Access, TokenExpired
from .brokers import CONFLICT, Broker, BrokerUnavailable, IdempotencyConflict, create_broker
from .channels import MAX_CHANNELS_PER_STREAM, check_channel
from .chat_routes import ChatRoutes
from .config import Config
from .cursor import EventId, format_id
from .hub import Hub
from .idempotency import Idempotency, idempotency_keys
from .limits import Lease, StreamLimits
from .meters import counted
from .metrics import HubMetrics
from .pages import Pages
from .proxies import TrustedProxies
from .publish import read_messages
from .publish_auth import authorize
from .responses import broker_unavailable, error_response, json_response
from .stream import MAX_HISTORY, StreamOptions, event_stream, expired_body, turned_away

logger = logging.getLogger(__name__)

STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    # Tells nginx (and PaaS routers built on it) not to buffer the stream.
    "X-Accel-Buffering": "no",
}


# The loader adds ssehub_poll for the polyfill; older polyfills send the others.
LONG_POLL_MARKERS = ("ssehub_poll", "padding", "evs_preamble", "evs_buffer_size_limit")
# At least 2 KB, which old IE buffers before showing anything: a comment line of
# 2,056 bytes as evs_preamble asks, plus the blank line that ends it, which
# wire.padding counts in its size (issue 9, item 7c).
PADDING_BYTES = 2056 + 1


# The core: streams, publishing, health and metrics; chat and pages come from their modules.
CORE_RULES = [
    Rule("/events", endpoint="events", methods=["GET", "OPTIONS"]),
    Rule("/publish", endpoint="publish", methods=["POST"]),
    Rule("/healthz", endpoint="healthz", methods=["GET"]),
    Rule("/readyz", endpoint="readyz", methods=["GET"]),
]


class SSEHubApp:
    def __init__(self, config: Config, broker: Broker):
        self.config = config
        self.broker = broker
        self.hub = Hub(broker, config.client_queue, config.heartbeat_seconds)
        self.limits = StreamLimits(config.max_streams_per_client, config.max_streams)
        self.access = Access(config)
        self.published = 0
        self.metrics = HubMetrics(self._metric_figures, self._broker_up, public=config.metrics_port is None)
        self._serve = request_ids.returning_it(TrustedProxies(self.wsgi_app, config.trusted_proxies))
        parts = (self, ChatRoutes(config, self.access, self.publish), Pages(), self.metrics)
        # A Map binds its rules, so each app gets copies of the shared ones.
        rules = (*CORE_RULES, *ChatRoutes.rules, *Pages.rules, *HubMetrics.rules)
        self.url_map = Map([rule.empty() for rule in rules])
        self._handlers = {
            name[3:]: getattr(part, name) for part in parts for name in dir(part) if name.startswith("on_")
        }

    def publish(self, channel: str, data: str, event: str | None = None) -> EventId:
        """Publish through the broker and count it (the chat routes' path)."""
        event_id, _ = self._publish_once(channel, data, event, None)
        return event_id

    def _publish_once(
        self, channel: str, data: str, event: str | None, idempotency: Idempotency | None
    ) -> tuple[EventId, bool]:
        """The one publish path of every route: the id, and whether this call
        stored it (False: an idempotency key's earlier event). Counted when stored."""
        if idempotency is None:
            event_id, stored = self.broker.publish(channel, data, event), True
        else:
            event_id, stored = self.broker.publish_once(channel, data, event, idempotency)
        self.published += stored
        return event_id, stored

    def on_events(self, request: Request) -> Response:
        if not cors.origin_allowed(request, self.config.allowed_origins):
            raise Forbidden("this origin is not in ALLOWED_ORIGINS")
        credentials = cors.credentials_headers(request, self.config.allowed_origins)
        if request.method == "OPTIONS":
            response = cors.preflight(request, "GET", "Last-Event-ID, Cache-Control, Accept, Authorization")
            response.headers.update(credentials)
            return response
        options = _stream_options(request, self.config)
        # What lets the page read the answer: streams and refusals alike.
        readable = {**cors.cors_headers(request), **credentials}
        headers = dict(STREAM_HEADERS)
        if options.long_poll:
            # Old IE caches XHR GETs; IE 8-9's XDomainRequest needs CORS even same-origin.
            headers["Cache-Control"] = "no-store, no-cache"
            readable.setdefault("Access-Control-Allow-Origin", "*")
        headers.update(readable)
        try:
            channels = _requested_channels(request)
            expires_at = self.access.check(request, channels)
        except TokenExpired:
            return _stream_response(expired_body(), headers)
        except HTTPException as error:
            # Readable cross-origin, so the page can tell a refusal from a network error.
            logger.info("GET /events from %s refused: %s", request.remote_addr, error.description)
            response = error_response(error)
            response.headers.update(readable)
            return response
        options = dataclasses.replace(options, expires_at=expires_at)
        request.environ[expiry.ENVIRON_KEY] = expires_at
        last_event_id = (
            request.headers.get("Last-Event-ID")
            or request.args.get("lastEventId")
            or request.args.get("evs_last_event_id")
            or None
        )
        client = request.remote_addr or "unknown"
        refused = self.limits.admit(client)
        if refused is None:
            lease = Lease(self.limits, client)
            self.hub.meters.streams_opened["long-poll" if options.long_poll else "stream"] += 1
            handover = None if options.long_poll else direct.handover(request.environ, lease, channels, self.hub.meters)
            stream = event_stream(self.hub, self.broker, channels, last_event_id, options, handover)
            body: Iterable[bytes] = _Released(stream, lease)
        else:
            logger.info("GET /events from %s turned away: %s", client, refused)
            body = turned_away(refused)
        return _stream_response(body, headers)

    def on_publish(self, request: Request) -> Response:
        try:
            response, outcome = self._publish_request(request)
        except HTTPException:
            self.hub.meters.publishes["refused"] += 1
            raise
        self.hub.meters.publishes[outcome] += 1
        return response

    def _publish_request(self, request: Request) -> tuple[Response, str]:
        """POST /publish's response, and its outcome for /metrics (meters.OUTCOMES)."""
        publisher = authorize(request, self.config.publish_token, self.access)
        messages, is_batch = read_messages(request, self.config.max_event_bytes)
        denied = publisher.channels.first_not_covered(tuple(message.channel for message in messages))
        if denied is not None:
            raise Forbidden(
                f"this token may not publish to {denied!r}: its ssehub.publish must cover it (nothing was published)"
            )
        keys = idempotency_keys(request, publisher.scope, messages)
        try:
            if len(messages) > 1 and any(
                self.broker.conflicts(message.channel, key) for message, key in zip(messages, keys, strict=True) if key
            ):
                return json_response({"error": CONFLICT, "published": []}, 422), "refused"
        except BrokerUnavailable as error:
            return broker_unavailable(error, messages[0].channel, []), "broker_unavailable"
        published: list[dict[str, str]] = []
        repeats = 0
        for message, key in zip(messages, keys, strict=True):
            try:
                event_id, stored = self._publish_once(message.channel, message.data, message.event, key)
            except IdempotencyConflict as error:
                return json_response({"error": str(error), "published": published}, 422), "refused"
            except BrokerUnavailable as error:
                logger.warning("publish to %s failed: %s", message.channel, error)
                return broker_unavailable(error, message.channel, published), "broker_unavailable"
            repeats += not stored
            published.append({"id": format_id(event_id), "channel": message.channel})
        response = json_response(published if is_batch else published[0], 201)
        return response, "duplicate_key" if repeats == len(messages) else "ok"

    def on_healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    def on_readyz(self, request: Request) -> Response:
        try:
            self.broker.check()
        except BrokerUnavailable as error:
            return json_response({"error": f"broker unavailable: {error}"}, 503)
        return json_response({"status": "ready", "subscribers": self.hub.subscriber_count})

    def _metric_figures(self) -> dict[str, float]:
        """This process's figures for /metrics by cell (meters.CELLS), but broker_up; no I/O."""
        return {
            "subscribers": self.hub.subscriber_count,
            "channels": self.hub.channel_count,
            "published_total": self.published,
            "deliveries_total": self.hub.delivered,
            "evictions_total": self.hub.evictions,
            "streams_refused_total": self.limits.refused,
            **counted(self.hub.meters),
        }

    def _broker_up(self) -> int:
        try:
            self.broker.check()
        except BrokerUnavailable:
            return 0
        return 1

    def dispatch_request(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
            return self._handlers[endpoint](request, **values)
        except MethodNotAllowed as error:
            allowed = ", ".join(m for m in error.valid_methods or () if m not in ("HEAD", "OPTIONS"))
            return error_response(MethodNotAllowed(error.valid_methods, f"use {allowed} on {request.path}"))
        except NotFound:
            return error_response(NotFound(f"no such endpoint: {request.path}"))
        except RequestRedirect as redirect:
            if request.environ.get("PATH_INFO"):
                return error_response(NotFound(f"no such endpoint: {request.path}"))
            # A hub mounted at /hub and asked for /hub: to /hub/, which the demo's links need.
            return redirect.get_response(request.environ)
        except UnicodeDecodeError:
            # Werkzeug decodes the query string on first use; raw non-UTF-8 bytes fail there.
            logger.info("%s %s from %s: URL is not UTF-8", request.method, request.path, request.remote_addr)
            return error_response(BadRequest("the URL is not valid UTF-8; percent-encode it"))
        except HTTPException as error:
            if error.code and error.code < 500:
                logger.info("%s %s from %s: %s", request.method, request.path, request.remote_addr, error.description)
            return error_response(error)
        except Exception:
            logger.exception("unexpected error on %s %s", request.method, request.path)
            return error_response(InternalServerError("the hub hit an internal error; it has been logged"))

    def wsgi_app(self, environ, start_response):
        """The app itself; __call__ runs it behind TrustedProxies, with request ids."""
        request = Request(environ)
        response = self.dispatch_request(request)
        return response(environ, start_response)

    def __call__(self, environ, start_response):
        return self._serve(environ, start_response)

    def shutdown(self) -> None:
        """End every open stream; browsers reconnect, to another process if there is one."""
        self.hub.shutdown()

    def close(self) -> None:
        self.hub.close()
        self.broker.close()
        self.metrics.close()  # last, so the final record has everything


class _Released:
    """A response body that gives its stream's place under the limits back when
    the server closes it, even if it never started (a generator's own `finally`
    would not run then), unless the stream was handed over and lives on."""

    def __init__(self, body: Generator[bytes, None, None], lease: Lease):
        self._body = body
        self._lease = lease

    def __iter__(self) -> Iterator[bytes]:
        return self._body

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            if not self._lease.handed_over:
                self._lease.release()


def _stream_response(body: Iterable[bytes], headers: dict[str, str]) -> Response:
    return Response(body, mimetype="text/event-stream", headers=headers, direct_passthrough=True)


def create_app(config: Config, broker: Broker | None = None) -> SSEHubApp:
    """The WSGI app; it needs gevent's monkey-patching, which the entry module
    does first. From here on no log line of this process shows a token."""
    if not gevent.monkey.is_module_patched("socket"):
        raise RuntimeError(
            "ssehub needs gevent's monkey-patching before anything else is imported: "
            "run `python service.py`, or `gunicorn -k gevent service:app`"
        )
    log_redaction.install()
    return SSEHubApp(config, broker if broker is not None else create_broker(config))


def _requested_channels(request: Request) -> tuple[str, ...]:
    names = request.args.getlist("channel")
    if not names:
        raise BadRequest("channel is required: /events?channel=news (repeat channel= for several)")
    try:
        channels = tuple(dict.fromkeys(check_channel(name) for name in names))
    except ValueError as error:
        raise BadRequest(f"{error}; repeat channel= for several channels") from None
    if len(channels) > MAX_CHANNELS_PER_STREAM:
        raise BadRequest(f"at most {MAX_CHANNELS_PER_STREAM} channels per stream")
    return channels


def _stream_options(request: Request, config: Config) -> StreamOptions:
    args = request.args
    history = args.get("history", "0")
    if not re.fullmatch(r"[0-9]{1,4}", history) or int(history) > MAX_HISTORY:
        raise BadRequest(f"history must be a whole number from 0 to {MAX_HISTORY}")
    padding = PADDING_BYTES if "padding" in args or "evs_preamble" in args else 0
    return StreamOptions(
        retry_ms=config.retry_ms,
        long_poll=any(name in args for name in LONG_POLL_MARKERS),
        padding=padding,
        history=int(history),
        wrap="wrap" in args,
    )
