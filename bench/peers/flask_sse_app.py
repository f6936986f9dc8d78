# mypy: disable-error-code="import-not-found"
# (make lint's mypy runs without the peers' packages: they are in bench/.venv-peers.)
"""flask-sse peer for bench/compare.py: its blueprint on gunicorn's gevent worker, Redis pub/sub.

GET /stream?channel=c is flask-sse's own stream view; POST /publish with JSON
{"channel": ..., "data": ...} calls `sse.publish(data, channel=...)` and
answers 201 {"receivers": n} (flask-sse has no event ids). A string is
published as it is, so the stream carries `data:<payload>` (no space after
the colon; valid SSE, which strips one optional space).

One change to flask-sse: the stream sends a comment once Redis has confirmed
the subscription. Unchanged, it sends nothing, not even the response head,
until the first event, so a client cannot tell that it is subscribed, and an
event published in between is lost to it.

    REDIS_URL=redis://127.0.0.1:6379/0 gunicorn --chdir bench/peers \\
        -k gevent -w 1 --worker-connections 20000 'flask_sse_app:create_app()'
"""

import os

from flask import Flask, json, request
from flask_sse import Message, ServerSentEventsBlueprint
from redis.exceptions import ConnectionError as RedisConnectionError


class Subscribed:
    """What the stream sends when Redis confirms the subscription: a comment."""

    def __str__(self) -> str:
        return ": subscribed\n\n"


class SubscribedFirstBlueprint(ServerSentEventsBlueprint):
    """flask-sse's blueprint, its messages() also yielding the confirmation."""

    def messages(self, channel="sse"):
        # flask-sse's own messages(), plus the "subscribe" reply.
        pubsub = self.redis.pubsub()
        pubsub.subscribe(channel)
        try:
            for pubsub_message in pubsub.listen():
                if pubsub_message["type"] == "subscribe":
                    yield Subscribed()
                elif pubsub_message["type"] == "message":
                    yield Message(**json.loads(pubsub_message["data"]))
        finally:
            try:
                pubsub.unsubscribe(channel)
            except RedisConnectionError:
                pass


def create_app() -> Flask:
    sse = SubscribedFirstBlueprint("sse", __name__)
    sse.add_url_rule(rule="", endpoint="stream", view_func=sse.stream)

    app = Flask(__name__)
    app.config["REDIS_URL"] = os.environ["REDIS_URL"]
    app.register_blueprint(sse, url_prefix="/stream")

    @app.post("/publish")
    def publish():
        body = request.get_json()
        channel, data = body.get("channel"), body.get("data")
        if not isinstance(channel, str) or not isinstance(data, str):
            return {"error": "channel and data must be strings"}, 400
        return {"receivers": sse.publish(data, channel=channel)}, 201

    @app.get("/healthz")
    def healthz():
        return {"ok": True}

    return app
