"""GET /metrics, through prometheus_client (issue 14, item 6).

The hub's figures come from counts its parts keep anyway (meters.py, the
hub, the limits), collected when Prometheus asks, so publishing and fan-out
never touch a metric object; prometheus_client adds the process's own series
(open files against the limit, memory, CPU) and writes the text format with
exact integers. With several workers every figure is the sum over them
(broker_up: the least, so one worker cut off from Redis shows), read from
the shared rows of worker_metrics.py, and the process series carry a
`worker` label, one set per worker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

import gevent
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.utils import floatToGoString
from werkzeug.exceptions import NotFound
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from .meters import CELLS, GAUGES, LATENCY, LATENCY_BOUNDS, LATENCY_HELP, SERIES, cell
from .responses import error_response
from .worker_metrics import WorkerMetrics

logger = logging.getLogger(__name__)

RECORD_INTERVAL_SECONDS = 1.0


class HubMetrics:
    """GET /metrics for one app, a part of its routes (as chat_routes.ChatRoutes):
    this process's figures, or once it has joined the shared rows, every worker's."""

    rules = [Rule("/metrics", endpoint="metrics", methods=["GET"])]

    def __init__(self, figures: Callable[[], dict[str, float]], broker_up: Callable[[], int], public: bool):
        """`figures()`: this process's cells (meters.CELLS) but broker_up, read without I/O;
        `broker_up()` probes the broker. Not `public` (METRICS_PORT): the app's port answers 404."""
        self._figures = figures
        self._broker_up = broker_up
        self._public = public
        self._shared: WorkerMetrics | None = None
        self._row: int | None = None
        self._claimed: dict[str, float] = {}
        self._last_up = 1
        self._recorder: gevent.Greenlet | None = None

    def join(self, shared: WorkerMetrics, row: int | None) -> None:
        """This process is a worker writing `row` of `shared` (None: there was no
        free row): keep it fresh, every second, for whichever worker answers."""
        self._shared = shared
        if row is None:
            logger.warning("no free row for this worker's figures: /metrics leaves them out")
            return
        self._row, self._claimed = row, shared.claim(row)
        self._recorder = gevent.spawn(self._record_forever)

    def on_metrics(self, request: Request) -> Response:
        if not self._public:
            raise NotFound()  # served on METRICS_PORT only (server.start_metrics_server)
        return self._response(request)

    def wsgi(self, environ, start_response):
        """The WSGI app on METRICS_PORT: GET /metrics, and nothing else."""
        request = Request(environ)
        if request.path == "/metrics" and request.method in ("GET", "HEAD"):
            response = self._response(request)
        else:
            response = error_response(NotFound(f"no such endpoint: {request.path}; this port serves GET /metrics"))
        return response(environ, start_response)

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's collector protocol: every series, now."""
        if self._shared is None:
            rows = {0: {"pid": os.getpid(), **self._figures(), "broker_up": self._broker_up()}}
        else:
            self._record(self._broker_up())
            rows = self._shared.rows()
        yield from _hub_series(rows)
        pids = {row: int(values["pid"]) for row, values in rows.items() if values["pid"]}
        # /proc/<pid>/fd lists one entry per socket: read it off the event loop.
        labelled = self._shared is not None
        yield from gevent.get_hub().threadpool.apply(_process_series, (pids, labelled))

    def close(self) -> None:
        """Stop recording, after a last record: a worker's counts up to its exit stay in the totals."""
        if self._recorder is not None:
            self._recorder.kill()
            self._record(self._last_up)

    def _response(self, request: Request) -> Response:
        try:
            encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        except (TypeError, ValueError):  # an Accept it cannot parse: the plain text format
            encode, content_type = generate_latest, CONTENT_TYPE_PLAIN_0_0_4
        return Response(encode(self), content_type=content_type)

    def _record(self, broker_up: int) -> None:
        if self._shared is None or self._row is None:
            return
        self._last_up = broker_up
        values = {"pid": os.getpid(), **self._figures(), "broker_up": broker_up}
        for name, count in self._claimed.items():
            values[name] += count
        self._shared.write(self._row, values)

    def _record_forever(self) -> None:
        while True:
            try:
                self._record(self._broker_up())
            except Exception:
                logger.exception("this worker's figures could not be recorded for /metrics")
            gevent.sleep(RECORD_INTERVAL_SECONDS)


def _hub_series(rows: dict[int, dict[str, float]]) -> Iterator[Metric]:
    """Counts summed over every row; state over the rows of living workers."""
    living = {row: values for row, values in rows.items() if values["pid"]}
    total = {name: sum(values[name] for values in (living if name in GAUGES else rows).values()) for name in CELLS}
    total["broker_up"] = min((values["broker_up"] for values in living.values()), default=0)
    for name, (kind, help_text, label, label_values) in SERIES.items():
        family_class = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        family = family_class(f"ssehub_{name}", help_text, labels=[label] if label else [])
        for value in label_values or ("",):
            family.add_metric([value] if label else [], total[cell(name, value)])
        yield family
    cumulative, buckets = 0.0, []
    for bucket, bound in enumerate((*LATENCY_BOUNDS, float("inf"))):
        cumulative += total[f"{LATENCY}/{bucket}"]
        buckets.append((floatToGoString(bound), cumulative))
    yield HistogramMetricFamily(f"ssehub_{LATENCY}", LATENCY_HELP, buckets=buckets, sum_value=total[f"{LATENCY}/sum"])
    yield GaugeMetricFamily("ssehub_workers", "Worker processes sharing the port.", len(living))
    per_worker = GaugeMetricFamily("ssehub_worker_subscribers", "Open /events streams per worker.", labels=["worker"])
    for row, values in sorted(living.items()):
        per_worker.add_metric([str(row)], values["subscribers"])
    yield per_worker


def _process_series(pids: dict[int, int], labelled: bool) -> list[Metric]:
    """prometheus_client's process series of each process (read from /proc/<pid>),
    labelled with its worker row when `labelled`: open files and their limit are per process."""
    merged: dict[str, Metric] = {}
    for row, pid in sorted(pids.items()):
        for family in _process_collector(pid).collect():
            into = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            for sample in family.samples:
                labels = {**sample.labels, "worker": str(row)} if labelled else sample.labels
                into.add_sample(sample.name, labels, sample.value)
    return list(merged.values())


def _process_collector(pid: int) -> ProcessCollector:
    return ProcessCollector(pid=lambda: pid, registry=None)
