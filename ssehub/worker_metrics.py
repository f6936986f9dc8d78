"""Each worker's counters in memory shared by all workers, so /metrics, which
any one of them answers, reports the whole (issue 12, item 6).

One row of signed 64-bit integers per worker in an anonymous shared mapping
made before the workers fork; a worker writes only its own row. One more row
keeps the counts of workers that died, so totals never go back when the
supervisor replaces one (Prometheus would read that as a counter reset).
"""

from __future__ import annotations

import mmap
import struct

_CELL = struct.Struct("q")


class WorkerMetrics:
    def __init__(self, names: tuple[str, ...], counters: tuple[str, ...], workers: int):
        self.names = names
        self.workers = workers
        self._counters = counters
        self._row = _CELL.size * len(names)
        self._memory = mmap.mmap(-1, self._row * (workers + 1))
        self.index = 0  # the row this process writes; set after forking

    def write(self, values: dict[str, int]) -> None:
        """Record this worker's current values."""
        self._write_row(self.index, values)

    def rows(self) -> list[dict[str, int]]:
        """Every worker's last recorded values, by worker index."""
        return [self._read_row(worker) for worker in range(self.workers)]

    def retired(self) -> dict[str, int]:
        """The counts of the workers that died, to add to the living ones'."""
        return self._read_row(self.workers)

    def retire(self, index: int) -> None:
        """Worker `index` died (the supervisor says so before replacing it):
        keep its counts, and start its row afresh for the next one."""
        dead, kept = self._read_row(index), self.retired()
        self._write_row(self.workers, {name: kept[name] + dead[name] for name in self._counters})
        self._write_row(index, {})

    def _write_row(self, row: int, values: dict[str, int]) -> None:
        for position, name in enumerate(self.names):
            _CELL.pack_into(self._memory, row * self._row + position * _CELL.size, values.get(name, 0))

    def _read_row(self, row: int) -> dict[str, int]:
        return {
            name: _CELL.unpack_from(self._memory, row * self._row + position * _CELL.size)[0]
            for position, name in enumerate(self.names)
        }
