# mypy: disable-error-code="import-not-found"
# (make lint's mypy runs without the peers' packages: they are in bench/.venv-peers.)
"""sse-starlette peer for bench/compare.py: the same API as ssehub, in-process broadcast.

GET /events?channel=c streams through sse-starlette's EventSourceResponse;
POST /publish with JSON {"channel": ..., "data": ...} answers 201 {"id": n},
ids counting up per channel. Written the way a careful user would: encoded
once per event, a queue per subscriber, a subscriber too far behind dropped
(as ssehub's CLIENT_QUEUE does) instead of growing without bound.

    uvicorn --app-dir bench/peers --factory starlette_app:create_app --no-access-log
"""

import asyncio
import collections
import itertools

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# Events buffered for one subscriber before it is dropped: ssehub's default CLIENT_QUEUE.
CLIENT_QUEUE = 1000
# Put on a dropped subscriber's queue to end its stream.
END = None
# First bytes of every stream: uvicorn holds back the response head until the
# first body chunk, and a client cannot tell it is subscribed before then.
HELLO = ServerSentEvent(comment="subscribed").encode()


class Broadcast:
    """Per-channel fan-out to the queues of this process's subscribers."""

    def __init__(self) -> None:
        self.queues: dict[str, set[asyncio.Queue]] = collections.defaultdict(set)
        self.ids: dict[str, itertools.count] = collections.defaultdict(lambda: itertools.count(1))

    def subscribe(self, channel: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        self.queues[channel].add(queue)
        return queue

    def unsubscribe(self, channel: str, queue: asyncio.Queue) -> None:
        self.queues[channel].discard(queue)
        if not self.queues[channel]:
            del self.queues[channel]

    def publish(self, channel: str, data: str) -> int:
        event_id = next(self.ids[channel])
        encoded = ServerSentEvent(data=data, id=str(event_id)).encode()
        for queue in list(self.queues.get(channel, ())):
            if queue.qsize() >= CLIENT_QUEUE:
                self.unsubscribe(channel, queue)
                queue.put_nowait(END)
            else:
                queue.put_nowait(encoded)
        return event_id


async def stream(broadcast: Broadcast, channel: str, queue: asyncio.Queue):
    """Yield the subscriber's encoded events until it is dropped or hangs up."""
    try:
        yield HELLO
        while (event := await queue.get()) is not END:
            yield event
    finally:
        broadcast.unsubscribe(channel, queue)


async def events(request: Request) -> EventSourceResponse | JSONResponse:
    channel = request.query_params.get("channel")
    if not channel:
        return JSONResponse({"error": "channel is required"}, status_code=400)
    broadcast = request.app.state.broadcast
    # Subscribed before the response starts, so nothing published after the
    # client sees the headers is missed.
    queue = broadcast.subscribe(channel)
    return EventSourceResponse(stream(broadcast, channel, queue))


async def publish(request: Request) -> JSONResponse:
    body = await request.json()
    channel, data = body.get("channel"), body.get("data")
    if not isinstance(channel, str) or not isinstance(data, str):
        return JSONResponse({"error": "channel and data must be strings"}, status_code=400)
    event_id = request.app.state.broadcast.publish(channel, data)
    return JSONResponse({"id": event_id}, status_code=201)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def create_app() -> Starlette:
    app = Starlette(
        routes=[
            Route("/events", events),
            Route("/publish", publish, methods=["POST"]),
            Route("/healthz", healthz),
        ]
    )
    app.state.broadcast = Broadcast()
    return app
