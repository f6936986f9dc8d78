"""Each worker's figures in memory shared by all workers, so /metrics, which
any one of them answers, reports the whole (issue 12, item 6; issue 14, item 6).

One row of doubles per worker (exact integers up to 2^53) in an anonymous
shared mapping made before the workers fork, by workers.py's supervisor or
gunicorn's master (gunicorn_conf.py). A worker writes only its own row, its
pid first. Counts never move between rows: a worker that takes over a dead
one's row adds its counts to those the row holds, so a reader summing every
row's counts while a worker dies and another starts never sees a total go
back or count one twice (Prometheus would read either as a counter reset).

Nothing here opens a socket: gunicorn's master imports it before gevent patches.
"""

from __future__ import annotations

import mmap
import struct


class WorkerMetrics:
    """The rows, made before the workers fork; each worker writes the one it was given."""

    def __init__(self, names: tuple[str, ...], gauges: tuple[str, ...], capacity: int):
        """`capacity` rows of the cells `names`; those in `gauges` are a living worker's state, the rest counts."""
        self.names = ("pid", *names)
        self.capacity = capacity
        self._state = ("pid", *gauges)
        self._row = struct.Struct(f"{len(self.names)}d")
        self._memory = mmap.mmap(-1, self._row.size * capacity)

    def claim(self, row: int) -> dict[str, float]:
        """The counts `row` holds from its earlier workers, which a new worker there adds its own to."""
        return {name: value for name, value in self._read(row).items() if name not in self._state}

    def write(self, row: int, values: dict[str, float]) -> None:
        """Record a worker's values (its pid, its state, and its counts plus the claimed ones)."""
        self._row.pack_into(self._memory, row * self._row.size, *(values.get(name, 0) for name in self.names))

    def rows(self) -> dict[int, dict[str, float]]:
        """Every row, by row: the counts of all that ever wrote there; a pid where a worker lives."""
        return {row: self._read(row) for row in range(self.capacity)}

    def release(self, row: int) -> None:
        """The worker of `row` died (its supervisor says so): forget its pid and
        state, keep its counts, and leave the row free for the next worker."""
        self.write(row, self.claim(row))

    def free_row(self, taken: set[int | None]) -> int | None:
        """The first row not in `taken`, for a new worker; None when all are."""
        return next((row for row in range(self.capacity) if row not in taken), None)

    def _read(self, row: int) -> dict[str, float]:
        return dict(zip(self.names, self._row.unpack_from(self._memory, row * self._row.size), strict=True))
