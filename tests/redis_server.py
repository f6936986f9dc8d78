"""A real redis-server for tests, on a free port, that tests can stop, kill, restart and pause."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, directory: str, appendonly: bool = False, binary: str | None = None):
        binary = binary or shutil.which("redis-server")
        if binary is None or not os.path.exists(binary):
            raise RuntimeError(f"{binary or 'redis-server'} is not installed: `make test` installs it")
        self.binary = binary
        self.directory = directory
        self.appendonly = appendonly
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        # appendfsync always: an acknowledged write survives a kill -9.
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                self.directory,
                "--logfile",
                os.path.join(self.directory, "redis.log"),
                *persistence,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client().ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)

    def flush(self) -> None:
        """Forget every key and function, as a restart without persistence does."""
        client = self.client()
        client.flushall()
        client.function_flush()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def url_for_user(self, name: str, *rules: str) -> str:
        """A URL as the ACL user `name`, (re)created with every key and channel and `rules`
        (such as "-function" for a managed Redis that refuses FUNCTION LOAD)."""
        self.client().acl_setuser(
            name, enabled=True, reset=True, passwords=["+pw"], keys=["*"], channels=["*"], commands=["+@all", *rules]
        )
        return self.url.replace("redis://", f"redis://{name}:pw@")

    def kill(self) -> None:
        """SIGKILL: Redis goes away at once, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()

    def pause(self) -> None:
        self._running().send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._running().send_signal(signal.SIGCONT)

    def _running(self) -> subprocess.Popen:
        if self.process is None:
            raise RuntimeError("start() the redis-server first")
        return self.process

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
        self.kill()
