"""Redis processes for tests on free loopback ports, and waiting for them (redis_cluster_nodes.py,
redis_sentinels.py)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.redis_server import free_port

POLL_SECONDS = 0.025
CLUSTER_SLOTS = 16384

T = TypeVar("T")


class NotYet(Exception):
    """Raised by a condition polled with `wait_until` while what it waits for has not happened."""


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: `apt-get install redis-server` (.ci/run does this)")
    return found


def free_ports(count: int, taken: set[int]) -> list[int]:
    """`count` free loopback ports, none of them in (or added twice to) `taken`."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in taken:
            taken.add(port)
            ports.append(port)
    return ports


def no_retry() -> Retry:
    # redis-py 8 retries a refused connection 10 times with backoff (seconds); a poll must not.
    return Retry(NoBackoff(), 0)


class Node:
    """One redis-server (or sentinel) process on 127.0.0.1:`port`, with a directory of its own."""

    def __init__(self, parent: str, name: str, port: int):
        self.port = port
        self.name = name
        self.directory = os.path.join(parent, f"{name}-{port}")
        os.makedirs(self.directory, exist_ok=True)
        self.log = os.path.join(self.directory, f"{name}-{port}.log")
        self.process: subprocess.Popen | None = None
        self.command_line: list[str] = []
        self._admin: redis.Connection | None = None
        self._admin_lock = threading.Lock()

    def __repr__(self) -> str:
        state = "alive" if self.alive else "down"
        return f"<{self.name} 127.0.0.1:{self.port} {state}>"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch_server(self, binary: str, *options: str) -> None:
        """redis-server on this node's port, directory and log, keeping nothing on disk, with `options`."""
        self.launch(
            [
                binary,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--appendonly", "no", "--save", ""),
                # A full sync starts at once, not after 7.0's 5 s wait for more replicas to share it.
                *("--repl-diskless-sync-delay", "0"),
                *("--dir", self.directory, "--logfile", self.log),
                *options,
            ]
        )

    def launch(self, command: list[str]) -> None:
        if self.alive:
            raise RuntimeError(f"{self!r} is already running")
        self.command_line = command
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def client(self, **settings) -> redis.Redis:
        """A redis.Redis to this node alone: 5 s socket timeouts, and no retries unless given."""
        settings.setdefault("socket_timeout", 5)
        settings.setdefault("socket_connect_timeout", 5)
        settings.setdefault("retry", no_retry())
        return redis.Redis(host="127.0.0.1", port=self.port, **settings)

    def command(self, *args):
        """A command on this node's admin connection (kept open: waits poll many times a second),
        its RESP2 reply decoded but not reshaped (redis-py 8 speaks RESP3 unless told, and its reply
        callbacks reshape INFO, SENTINEL ...). A connection found closed is replaced once."""
        with self._admin_lock:
            if self._admin is None:
                self._admin = redis.Connection(
                    host="127.0.0.1",
                    port=self.port,
                    protocol=2,
                    socket_timeout=2,
                    socket_connect_timeout=2,
                    decode_responses=True,
                    retry=no_retry(),
                )
            reused = self._admin._sock is not None
            while True:
                try:
                    self._admin.send_command(*args)
                    return self._admin.read_response()
                except redis.ResponseError:
                    raise
                except redis.ConnectionError:
                    self._admin.disconnect()
                    if not reused:
                        raise
                    reused = False
                except BaseException:
                    self._admin.disconnect()
                    raise

    def info(self, section: str) -> dict[str, str]:
        """An INFO section's fields, as Redis wrote them."""
        return fields(self.command("INFO", section))

    def kill(self) -> None:
        """SIGKILL: the process goes away at once, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait()
        with self._admin_lock:
            if self._admin is not None:
                self._admin.disconnect()

    def log_tail(self, lines: int = 15) -> str:
        """The end of the log; for a process that exited, its status and command line too (a
        config error goes to stderr, which is /dev/null, before the log is opened)."""
        heading = f"--- {self!r} {self.log}"
        if self.process is not None and self.process.poll() is not None:
            heading += f" (exit status {self.process.returncode}: {shlex.join(self.command_line)})"
        try:
            with open(self.log, errors="replace") as handle:
                tail = handle.readlines()[-lines:]
        except OSError as error:
            tail = [f"no log: {error}\n"]
        return f"{heading}:\n" + "".join(tail)


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    watched: Iterable[Node] = (),
) -> T:
    """Poll `condition` until it returns without raising NotYet (or a Redis or socket error).

    Raises RuntimeError, with the last reason and the watched nodes' log tails, when the deadline
    passes or a watched node's process exits.
    """
    watched = list(watched)
    deadline = time.monotonic() + timeout
    reason = "never checked"
    while True:
        dead = [node for node in watched if not node.alive]
        if dead:
            raise RuntimeError(f"waiting for {what}: {dead} exited\n" + "\n".join(n.log_tail() for n in dead))
        try:
            return condition()
        except NotYet as not_yet:
            reason = str(not_yet)
        except (redis.RedisError, OSError) as error:
            reason = f"{type(error).__name__}: {error}"
        if time.monotonic() > deadline:
            logs = "\n".join(node.log_tail(8) for node in watched)
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}; last: {reason}\n{logs}")
        time.sleep(POLL_SECONDS)


def wait_ping(nodes: Iterable[Node], timeout: float = 10) -> None:
    for node in nodes:

        def ping(node: Node = node) -> None:
            node.command("PING")

        wait_until(ping, timeout, f"{node!r} to answer PING", [node])


# ----------------------------------------------------------------------------------------------------
# Redis Cluster


def fields(text: str) -> dict[str, str]:
    """`field:value` lines (INFO, CLUSTER INFO) as a dict."""
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def pairs(flat: list) -> dict[str, str]:
    """A sentinel's [key, value, key, value, ...] answer as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))
