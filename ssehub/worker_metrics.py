"""Each worker's counters in memory shared by all workers, so /metrics, which
any one of them answers, reports the whole (issue 12, item 6).

One row of signed 64-bit integers per worker in an anonymous shared mapping
made before the workers fork; a worker writes only its own row.
"""

from __future__ import annotations

import mmap
import struct

_CELL = struct.Struct("q")


class WorkerMetrics:
    def __init__(self, names: tuple[str, ...], workers: int):
        self.names = names
        self.workers = workers
        self._row = _CELL.size * len(names)
        self._memory = mmap.mmap(-1, self._row * workers)
        self.index = 0  # the row this process writes; set after forking

    def write(self, values: dict[str, int]) -> None:
        """Record this worker's current values."""
        offset = self.index * self._row
        for position, name in enumerate(self.names):
            _CELL.pack_into(self._memory, offset + position * _CELL.size, values[name])

    def rows(self) -> list[dict[str, int]]:
        """Every worker's last recorded values, by worker index."""
        return [
            {
                name: _CELL.unpack_from(self._memory, worker * self._row + position * _CELL.size)[0]
                for position, name in enumerate(self.names)
            }
            for worker in range(self.workers)
        ]
