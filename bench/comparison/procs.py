"""Child processes for the comparison: started pinned to a core, stopped with everything they forked.

Also what the workloads measure of a server: CPU seconds and memory of its
whole process tree (gunicorn's and nginx's workers are children), read from /proc.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
STOP_GRACE_SECONDS = 8


class BenchError(RuntimeError):
    """A server, helper or workload could not go on; the message says why (with a log's end)."""


class Child:
    """One command run as `taskset -c <core>` in its own session, output to a log file.

    Its own session, so stop() reaches every process it forked (nginx and
    gunicorn workers) even when the parent is gone.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        log: Path,
        core: int,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ):
        self.name = name
        self.log = log
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(
                ["taskset", "-c", str(core), *argv],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.popen.pid

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def signal(self, signum: int) -> None:
        """Send signum to the whole group, ignoring a group that is already gone."""
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> int:
        """SIGTERM the group, SIGKILL it after `grace` seconds; return the exit status."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Workers can outlive their parent (gunicorn's draining ones did).
        self.signal(signal.SIGKILL)
        return self.popen.wait()

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise BenchError(f"{self.name} exited with status {self.popen.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http_ok(child: Child, url: str, timeout: float) -> float:
    """Poll url until it answers 200; return time.monotonic() of that answer."""
    deadline = time.monotonic() + timeout
    while True:
        child.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.monotonic()
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{child.name} did not answer {url} within {timeout} s:\n{child.log_tail()}")
        time.sleep(0.02)


def wait_redis(child: Child, port: int, timeout: float) -> None:
    """Poll until redis-server answers PING."""
    deadline = time.monotonic() + timeout
    while True:
        child.check_alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"redis-server did not answer within {timeout} s:\n{child.log_tail()}")
        time.sleep(0.02)


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, ()))
    return tree


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of the live process tree under pid."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """RSS and PSS (KiB) summed over the process tree under pid.

    PSS shares pages between a parent and its forked workers instead of
    counting them in each, so it is the fairer sum for gunicorn and nginx.
    """
    rss = pss = 0
    for member in process_tree(pid):
        try:
            rss += _kib_field(Path(f"/proc/{member}/status"), "VmRSS:")
            pss += _kib_field(Path(f"/proc/{member}/smaps_rollup"), "Pss:")
        except OSError:
            continue
    return {"rss_kib": rss, "pss_kib": pss}


def _kib_field(path: Path, name: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return 0
