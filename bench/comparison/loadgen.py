"""bench/loadgen, the C load generator, as the workloads use it: built when stale, run on core 1.

A run reports its phases on stderr as JSON lines while it goes (read here on
a thread, so a workload can act at "publishing" or "all_live") and one JSON
summary on stdout at the end.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from .procs import BenchError
from .servers import Endpoints

LOADGEN_CORE = 1
# Beyond the time a run should take: connecting, publishing, draining.
SLACK_SECONDS = 30


class LoadgenFailed(BenchError):
    """bench/loadgen exited badly, printed no summary, or overran its time."""


def build(bench: Path) -> Path:
    """Compile bench/loadgen.c when the binary is missing or older than the source."""
    source, binary = bench / "loadgen.c", bench / "loadgen"
    if not source.exists():
        raise LoadgenFailed(f"{source} does not exist yet")
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(
            ["gcc", "-O2", "-Wall", "-Wextra", "-o", str(binary), str(source), "-lm"],
            check=True,
            timeout=120,
        )
    return binary


def options_to_args(options: dict[str, object]) -> list[str]:
    """{"drain_timeout": 10, "reconnect": True} -> ["--drain-timeout", "10", "--reconnect"]."""
    args: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not False and value is not None:
            args += [flag, str(value)]
    return args


def expected_seconds(options: dict) -> float:
    """How long a run with these options should take, without slack."""
    subscribers = options.get("subscribers", 0)
    connecting = subscribers / max(1, options.get("connect_rate", 1000))
    publishes = options.get("events", 0) * options.get("channels", 1)
    rate = options.get("rate", 0)
    publishing = publishes / rate if rate else publishes / 1000
    waits = sum(options.get(name, 0) for name in ("settle", "drain_timeout", "hold", "duration"))
    return connecting + publishing + waits


class Run:
    """One bench/loadgen process against one server; phases as they arrive."""

    def __init__(self, binary: Path, port: int, endpoints: Endpoints, options: dict, log: Path):
        self.argv = [str(binary), "--host", "127.0.0.1", "--port", str(port)]
        self.argv += endpoints.loadgen_args() + options_to_args(options)
        self.deadline = time.monotonic() + expected_seconds(options) + options.get("connect_timeout", 0) + SLACK_SECONDS
        self.phases: list[dict] = []
        self.noise: list[str] = []
        self._arrived = threading.Condition()
        self._log = open(log, "a")
        self._log.write(" ".join(self.argv) + "\n")
        self.popen = subprocess.Popen(
            ["taskset", "-c", str(LOADGEN_CORE), *self.argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._stdout = ""
        self._reader = threading.Thread(target=self._read_phases, daemon=True)
        self._reader.start()
        self._summary_reader = threading.Thread(target=self._read_summary, daemon=True)
        self._summary_reader.start()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()
        self._log.close()

    def _read_phases(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self._log.write(line)
            try:
                phase = json.loads(line)
            except ValueError:
                self.noise.append(line.rstrip())
                continue
            with self._arrived:
                self.phases.append(phase)
                self._arrived.notify_all()
        with self._arrived:
            self._arrived.notify_all()

    def _read_summary(self) -> None:
        assert self.popen.stdout is not None
        self._stdout = self.popen.stdout.read()

    def wait_phase(self, name: str, after: float = 0.0) -> float | None:
        """Block until phase `name` is reported with t > after; its t, or None when the run ended first."""
        with self._arrived:
            while True:
                for phase in self.phases:
                    if phase.get("phase") == name and phase.get("t", 0) > after:
                        return phase["t"]
                if not self._reader.is_alive() or time.monotonic() > self.deadline:
                    return None
                self._arrived.wait(0.1)

    def result(self) -> dict:
        """Wait for the end (killing it past its deadline) and return the summary, with the phases."""
        try:
            self.popen.wait(timeout=max(1.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.popen.kill()
            raise LoadgenFailed(f"loadgen overran its {SLACK_SECONDS} s slack: {' '.join(self.argv)}") from None
        self._reader.join(5)
        self._summary_reader.join(5)
        try:
            summary = json.loads(self._stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            tail = "\n".join(self.noise[-10:])
            raise LoadgenFailed(f"loadgen exited {self.popen.returncode} without a summary:\n{tail}") from None
        summary["phases"] = self.phases
        return summary


def run(binary: Path, port: int, endpoints: Endpoints, options: dict, log: Path) -> dict:
    """Run loadgen to the end and return its summary."""
    with Run(binary, port, endpoints, options, log) as loadgen:
        return loadgen.result()
