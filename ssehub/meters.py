"""What one hub process counts as it works, and the series /metrics makes of
it (metrics.py), as flat cells that workers can share (worker_metrics.py).

Plain integers and one hand-rolled histogram, bumped in place: a delivery
costs a few increments (0.07 µs each), where prometheus_client's
Counter.inc and Histogram.observe, a lock each, take 0.55 and 1.4 µs under
gevent: nearly as much as the rest of a delivery's Python work, about
2.2 µs (issue 14, item 6).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence

from .event import Event

TRANSPORTS = ("stream", "long-poll")
RESUMES = ("exact", "reset")
OUTCOMES = ("ok", "refused", "broker_unavailable", "duplicate_key")
# Upper bounds, in seconds, of the delivery-latency buckets: from a fan-out's
# first socket write to a subscriber that falls behind by seconds.
LATENCY_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# name (after ssehub_): (type, help, label name or None, label values)
SERIES: dict[str, tuple[str, str, str | None, tuple[str, ...]]] = {
    "subscribers": ("gauge", "Open /events streams.", None, ()),
    "channels": ("gauge", "Channels with a subscriber, counted per process.", None, ()),
    "broker_up": ("gauge", "1 when the broker is reachable.", None, ()),
    "published_total": ("counter", "Events stored through the hub's HTTP routes (not repeats).", None, ()),
    "deliveries_total": ("counter", "Events handed to subscribers.", None, ()),
    "evictions_total": ("counter", "Subscribers dropped for falling behind.", None, ()),
    "streams_refused_total": ("counter", "Streams turned away at a limit.", None, ()),
    "streams_opened_total": ("counter", "Streams admitted, by transport.", "transport", TRANSPORTS),
    "resumes_total": ("counter", "Streams resumed from an id: exactly, or reset.", "result", RESUMES),
    "publishes_total": ("counter", "POST /publish requests, by outcome.", "outcome", OUTCOMES),
    "written_bytes_total": ("counter", "Event-stream bytes written to subscribers.", None, ()),
}
LATENCY = "delivery_seconds"
LATENCY_HELP = "Seconds from a live event's arrival in the process to its write to a subscriber's socket."
GAUGES = tuple(name for name, (kind, *_) in SERIES.items() if kind == "gauge")


def cell(name: str, label_value: str) -> str:
    """Where one series (with one value of its label) is kept."""
    return f"{name}/{label_value}" if label_value else name


# The cells of one process's figures: one per series and label value, the
# histogram's buckets (not cumulative) and its sum.
CELLS = (
    *(cell(name, value) for name, (*_, values) in SERIES.items() for value in values or ("",)),
    *(f"{LATENCY}/{bucket}" for bucket in range(len(LATENCY_BOUNDS) + 1)),
    f"{LATENCY}/sum",
)


class Latency:
    """A histogram of seconds: how many observations fell in each bucket
    (the last one: above every bound), and their sum."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BOUNDS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float, times: int = 1) -> None:
        self.counts[bisect.bisect_left(LATENCY_BOUNDS, seconds)] += times
        self.sum += seconds * times


class Meters:
    """This process's counts that the hub's parts keep: streams opened by
    transport, resumes by result, POST /publish requests by outcome, bytes
    written to subscribers, and each live event's time from arriving in the
    process to its write to a subscriber's socket."""

    __slots__ = ("streams_opened", "resumes", "publishes", "written_bytes", "delivery_seconds")

    def __init__(self) -> None:
        self.streams_opened = dict.fromkeys(TRANSPORTS, 0)
        self.resumes = dict.fromkeys(RESUMES, 0)
        self.publishes = dict.fromkeys(OUTCOMES, 0)
        self.written_bytes = 0
        self.delivery_seconds = Latency()

    def written(self, size: int, events: Sequence[Event] = ()) -> None:
        """`size` bytes of a stream were written, carrying these live `events`."""
        self.written_bytes += size
        if events:
            now = time.monotonic()
            for event in events:
                self.delivery_seconds.observe(now - event.arrived)

    def fanned_out(self, event: Event, writes: int, size: int) -> None:
        """The fan-out wrote `event` to `writes` sockets just now, `size` bytes in all."""
        if writes:
            self.written_bytes += size
            self.delivery_seconds.observe(time.monotonic() - event.arrived, writes)


def counted(meters: Meters) -> dict[str, float]:
    """The cells that `meters` keeps."""
    latency = meters.delivery_seconds
    return {
        **{cell("streams_opened_total", key): value for key, value in meters.streams_opened.items()},
        **{cell("resumes_total", key): value for key, value in meters.resumes.items()},
        **{cell("publishes_total", key): value for key, value in meters.publishes.items()},
        "written_bytes_total": meters.written_bytes,
        **{f"{LATENCY}/{bucket}": count for bucket, count in enumerate(latency.counts)},
        f"{LATENCY}/sum": latency.sum,
    }
