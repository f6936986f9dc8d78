"""`python service.py` as a child process on a free port, with its log kept for assertions."""

import os
import signal
import subprocess
import sys

from tests.conftest import HubClient, wait_for
from tests.redis_server import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Service(HubClient):
    def __init__(self, env=None, preexec_fn=None, port=None):
        self.port = port or free_port()
        self.log_path = os.path.join(ROOT, ".pytest_cache", f"service-{self.port}.log")
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.log = open(self.log_path, "w+")
        self.process = subprocess.Popen(
            [sys.executable, "service.py"],
            cwd=ROOT,
            env={"PATH": os.environ["PATH"], "HOST": "127.0.0.1", "PORT": str(self.port), **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
            process_group=0,  # stop() ends its workers too
        )

    def output(self):
        with open(self.log_path) as log:
            return log.read()

    def wait_listening(self):
        wait_for(lambda: "listening on" in self.output() or self.process.poll() is not None, timeout=20)
        assert "listening on" in self.output(), self.output()

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # and its workers, if any
        except ProcessLookupError:
            pass
        self.process.wait()
        self.log.close()
