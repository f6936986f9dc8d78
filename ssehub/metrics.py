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
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.utils import floatToGoString

from .meters import CELLS, LATENCY, LATENCY_BOUNDS, LATENCY_HELP, SERIES, cell
from .worker_metrics import WorkerMetrics

logger = logging.getLogger(__name__)

RECORD_INTERVAL_SECONDS = 1.0


class HubMetrics:
    """What /metrics reports for one app. `figures()` gives this process's
    cells (CELLS); with `join`, the whole of several workers."""

    def __init__(self, figures: Callable[[], dict[str, float]]):
        self._figures = figures
        self._shared: WorkerMetrics | None = None
        self._row = 0
        self._recorder: gevent.Greenlet | None = None

    def join(self, shared: WorkerMetrics, row: int) -> None:
        """This process is the worker writing `row` of `shared`: keep it fresh
        (every second) for whichever worker answers /metrics."""
        self._shared, self._row = shared, row
        self._recorder = gevent.spawn(self._record_forever)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The text Prometheus asked for (its Accept header), and its content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self), content_type

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's collector protocol: every series, now."""
        if self._shared is None:
            rows = {0: {"pid": 0, **self._figures()}}
        else:
            self._record()
            rows = self._shared.rows()
        yield from _hub_series(rows, self._shared.retired() if self._shared else {})
        if self._shared is None:
            yield from ProcessCollector(registry=None).collect()
        else:
            yield from _per_worker_process_series(rows)

    def close(self) -> None:
        if self._recorder is not None:
            self._recorder.kill()

    def _record(self) -> None:
        assert self._shared is not None
        self._shared.write(self._row, {"pid": os.getpid(), **self._figures()})

    def _record_forever(self) -> None:
        while True:
            try:
                self._record()
            except Exception:
                logger.exception("this worker's figures could not be recorded for /metrics")
            gevent.sleep(RECORD_INTERVAL_SECONDS)


def _hub_series(rows: dict[int, dict[str, float]], retired: dict[str, float]) -> Iterator[Metric]:
    total = {cell: sum(row[cell] for row in rows.values()) + retired.get(cell, 0) for cell in CELLS}
    total["broker_up"] = min(row["broker_up"] for row in rows.values())
    for name, (kind, help_text, label, values) in SERIES.items():
        family_class = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        family = family_class(f"ssehub_{name}", help_text, labels=[label] if label else [])
        for value in values or ("",):
            family.add_metric([value] if label else [], total[cell(name, value)])
        yield family
    cumulative, buckets = 0.0, []
    for bucket, bound in enumerate((*LATENCY_BOUNDS, float("inf"))):
        cumulative += total[f"{LATENCY}/{bucket}"]
        buckets.append((floatToGoString(bound), cumulative))
    yield HistogramMetricFamily(f"ssehub_{LATENCY}", LATENCY_HELP, buckets=buckets, sum_value=total[f"{LATENCY}/sum"])
    yield GaugeMetricFamily("ssehub_workers", "Worker processes sharing the port.", len(rows))
    per_worker = GaugeMetricFamily("ssehub_worker_subscribers", "Open /events streams per worker.", labels=["worker"])
    for index, row in sorted(rows.items()):
        per_worker.add_metric([str(index)], row["subscribers"])
    yield per_worker


def _per_worker_process_series(rows: dict[int, dict[str, float]]) -> Iterator[Metric]:
    """prometheus_client's process series for each worker (read from /proc/<pid>),
    labelled with its worker number: open files and their limit are per process."""
    merged: dict[str, Metric] = {}
    for index, row in sorted(rows.items()):
        for family in _process_collector(int(row["pid"])).collect():
            into = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            for sample in family.samples:
                into.add_sample(sample.name, {**sample.labels, "worker": str(index)}, sample.value)
    yield from merged.values()


def _process_collector(pid: int) -> ProcessCollector:
    return ProcessCollector(pid=lambda: pid, registry=None)
