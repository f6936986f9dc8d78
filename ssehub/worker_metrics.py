"""Each worker's figures in memory shared by all workers, so /metrics, which
any one of them answers, reports the whole (issue 12, item 6; issue 14, item 6).

One row of doubles per worker (exact integers up to 2^53) in an anonymous
shared mapping made before the workers fork, by workers.py's supervisor or
gunicorn's master (gunicorn_conf.py); a worker writes only its own row, its
pid first, so an unclaimed row (pid 0) is skipped. One more row keeps the
counts of workers that died, so totals never go back when one is replaced
(Prometheus would read that as a counter reset).

Nothing here opens a socket: gunicorn's master imports it before gevent patches.
"""

from __future__ import annotations

import mmap
import struct

_CELL = struct.Struct("d")


class WorkerMetrics:
    def __init__(self, names: tuple[str, ...], counters: tuple[str, ...], capacity: int):
        """`capacity` rows of the cells `names`; those in `counters` survive their worker."""
        self.names = ("pid", *names)
        self.capacity = capacity
        self._counters = counters
        self._row = _CELL.size * len(self.names)
        self._memory = mmap.mmap(-1, self._row * (capacity + 1))

    def write(self, row: int, values: dict[str, float]) -> None:
        """Record a worker's current values (with its pid) in its row."""
        self._write_row(row, values)

    def rows(self) -> dict[int, dict[str, float]]:
        """Every claimed row's last recorded values, by row."""
        rows = {row: self._read_row(row) for row in range(self.capacity)}
        return {row: values for row, values in rows.items() if values["pid"]}

    def retired(self) -> dict[str, float]:
        """The counts of the workers that died, to add to the living ones'."""
        return self._read_row(self.capacity)

    def retire(self, row: int) -> None:
        """The worker of `row` died (its supervisor says so): keep its counts,
        and free its row for the next one."""
        dead, kept = self._read_row(row), self.retired()
        self._write_row(self.capacity, {name: kept[name] + dead[name] for name in self._counters})
        self._write_row(row, {})

    def free_row(self, taken: set[int]) -> int | None:
        """The first row not in `taken`, for a new worker; None when all are."""
        return next((row for row in range(self.capacity) if row not in taken), None)

    def _write_row(self, row: int, values: dict[str, float]) -> None:
        for position, name in enumerate(self.names):
            _CELL.pack_into(self._memory, row * self._row + position * _CELL.size, values.get(name, 0))

    def _read_row(self, row: int) -> dict[str, float]:
        return {
            name: _CELL.unpack_from(self._memory, row * self._row + position * _CELL.size)[0]
            for position, name in enumerate(self.names)
        }
