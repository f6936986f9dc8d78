"""GET /metrics: the hub's figures in the Prometheus text format (0.0.4).

With several workers, every figure is the sum over them (broker_up: the
least, so one worker cut off from Redis shows), and each worker's own
subscriber count is a labelled series of its own.
"""

from __future__ import annotations

# name (after ssehub_): (type, help)
METRICS = {
    "subscribers": ("gauge", "Open /events streams."),
    "channels": ("gauge", "Channels with a subscriber, counted per process."),
    "published_total": ("counter", "Events published through the hub's HTTP routes."),
    "deliveries_total": ("counter", "Events handed to subscribers."),
    "evictions_total": ("counter", "Subscribers dropped for falling behind."),
    "streams_refused_total": ("counter", "Streams turned away at a limit."),
    "broker_up": ("gauge", "1 when the broker is reachable."),
}


def render(values: dict[str, int]) -> str:
    lines = []
    for name, (kind, help_text) in METRICS.items():
        lines += [f"# HELP ssehub_{name} {help_text}", f"# TYPE ssehub_{name} {kind}", f"ssehub_{name} {values[name]}"]
    return "\n".join(lines) + "\n"


COUNTERS = tuple(name for name, (kind, _) in METRICS.items() if kind == "counter")


def render_workers(rows: list[dict[str, int]], retired: dict[str, int]) -> str:
    """The whole of several workers' figures (counters including those of
    workers that died), then each worker's subscribers."""
    totals = {name: sum(row[name] for row in rows) + (retired[name] if name in COUNTERS else 0) for name in METRICS}
    totals["broker_up"] = min(row["broker_up"] for row in rows)
    lines = [
        render(totals).rstrip("\n"),
        "# HELP ssehub_workers Worker processes sharing the port.",
        "# TYPE ssehub_workers gauge",
        f"ssehub_workers {len(rows)}",
        "# HELP ssehub_worker_subscribers Open /events streams per worker.",
        "# TYPE ssehub_worker_subscribers gauge",
        *(f'ssehub_worker_subscribers{{worker="{index}"}} {row["subscribers"]}' for index, row in enumerate(rows)),
    ]
    return "\n".join(lines) + "\n"
