"""What every workload shares: the scale of the run, a server started and warmed up, loadgen's defaults.

A server runs for one workload (several loadgen runs) and is stopped after
it, so no workload inherits another's connections or memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import resource
from collections.abc import Iterator
from pathlib import Path

from . import loadgen
from .procs import Child, free_port, wait_http_ok
from .servers import Server, Setup

PAYLOAD_BYTES = 110
# Publishing time of one rate step.
STEP_SECONDS = 5
START_TIMEOUT_SECONDS = 30
# Open files the server keeps besides its streams: listener, logs, Redis, slack.
SPARE_FILES = 500


@dataclasses.dataclass(frozen=True)
class Scale:
    """Full size, or a smoke run (--quick): counts a tenth, times an eighth, every other rate step."""

    quick: bool

    def count(self, full: int) -> int:
        return max(1, full // 10) if self.quick else full

    def seconds(self, full: float) -> float:
        return full / 8 if self.quick else full

    @property
    def min_events(self) -> int:
        return 20 if self.quick else 50

    def steps(self, rates: tuple[int, ...]) -> tuple[int, ...]:
        """Every rate, or every other one when quick (still reaching the top)."""
        return rates[::-2][::-1] if self.quick else rates

    def loadgen_defaults(self) -> dict:
        return {
            "payload": PAYLOAD_BYTES,
            "settle": self.seconds(1),
            "drain_timeout": self.seconds(10),
            "connect_timeout": self.seconds(60),
            "connect_rate": 2000,
        }


@dataclasses.dataclass(frozen=True)
class Running:
    """A started server: what loadgen connects to and what /proc is read for."""

    server: Server
    port: int
    child: Child
    use_redis: bool


@dataclasses.dataclass(frozen=True)
class Bench:
    """The run's setup, loadgen binary and scale; starts servers and loadgen runs."""

    setup: Setup
    binary: Path
    scale: Scale
    log: Path

    @contextlib.contextmanager
    def serving(self, server: Server, use_redis: bool) -> Iterator[Running]:
        """The server started on a free port, ready and warmed up; stopped on leaving."""
        port = free_port()
        with server.start(self.setup, port, use_redis) as child:
            running = Running(server, port, child, use_redis)
            wait_until_ready(child, port)
            self.warm_up(running)
            yield running

    def warm_up(self, running: Running) -> None:
        """A short run first, so imports, caches and first-connection costs are not measured."""
        self.run(running, subscribers=10, channels=1, events=200, rate=0, channel_prefix="warmup")

    def options(self, **options) -> dict:
        return {**self.scale.loadgen_defaults(), **options}

    def start(self, running: Running, **options) -> loadgen.Run:
        """loadgen started against a running server; use as a context manager."""
        return loadgen.Run(self.binary, running.port, running.server.endpoints, self.options(**options), self.log)

    def run(self, running: Running, **options) -> dict:
        with self.start(running, **options) as run:
            return run.result()

    def held_streams(self, server: Server, wanted: int) -> int:
        """wanted, or as many as the server's open-file limit allows."""
        files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        return min(wanted, (files - SPARE_FILES) // server.files_per_stream)


def wait_until_ready(child: Child, port: int) -> float:
    """Poll the server's /healthz; return time.monotonic() of its first 200."""
    return wait_http_ok(child, f"http://127.0.0.1:{port}/healthz", START_TIMEOUT_SECONDS)


def events_per_channel(scale: Scale, rate: int, channels: int) -> int:
    """About STEP_SECONDS of publishing at `rate` spread over the channels."""
    total = max(scale.min_events, math.ceil(rate * scale.seconds(STEP_SECONDS)))
    return max(1, math.ceil(total / channels))
