"""The shared rows of worker_metrics.py: counts never move between rows, so no
sum over them goes back or counts one twice while workers die and start."""

from ssehub.meters import CELLS, GAUGES
from ssehub.worker_metrics import WorkerMetrics


def _total(shared, name):
    return sum(values[name] for values in shared.rows().values())


def test_a_row_keeps_a_dead_workers_counts_and_its_next_worker_adds_to_them():
    shared = WorkerMetrics(CELLS, GAUGES, capacity=2)
    shared.write(0, {"pid": 101, "published_total": 7, "subscribers": 3})
    shared.write(1, {"pid": 102, "published_total": 5, "subscribers": 2})
    seen = [_total(shared, "published_total")]
    shared.release(0)  # worker 101 died
    seen.append(_total(shared, "published_total"))
    assert shared.rows()[0]["pid"] == 0 and shared.rows()[0]["subscribers"] == 0
    claimed = shared.claim(0)  # its replacement takes the row
    assert claimed["published_total"] == 7 and "pid" not in claimed and "subscribers" not in claimed
    seen.append(_total(shared, "published_total"))
    shared.write(0, {"pid": 103, "published_total": claimed["published_total"] + 1})
    seen.append(_total(shared, "published_total"))
    assert seen == [12, 12, 12, 13]
    assert shared.free_row({0}) == 1 and shared.free_row({0, 1}) is None
