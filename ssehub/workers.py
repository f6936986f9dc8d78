"""WEB_CONCURRENCY: several worker processes on one port, supervised by this one.

Each worker is a whole hub (its own app, Redis connections and subscription)
listening with SO_REUSEPORT, so every core serves streams; the workers meet
only through Redis, which is why the embedded broker refuses more than one
(config.py). SIGTERM or SIGINT here is passed to every worker, which ends its
streams and exits; a worker that dies later is replaced.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import time

import gevent
import gevent.monkey
import gevent.os

from .app import create_app
from .config import Config, ConfigError
from .meters import CELLS, GAUGES
from .server import listen_error, listening_socket, serve
from .worker_metrics import WorkerMetrics

logger = logging.getLogger(__name__)

# A worker's exit status when a setting stopped its start (as `python service.py`'s).
BAD_SETTING_STATUS = 2
# Pause before replacing a worker that died, so a crash loop does not spin.
REPLACE_DELAY_SECONDS = 1.0
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_blocking_waitpid = gevent.monkey.get_original("os", "waitpid")


def serve_workers(config: Config) -> int:
    """Run `config.web_concurrency` workers until a signal; return the exit status.

    Raises ConfigError when HOST and PORT (or METRICS_PORT) cannot be listened on.
    """
    ports = {"PORT": config.port, "METRICS_PORT": config.metrics_port}
    for name, port in ports.items():
        if port is None:
            continue
        try:
            # A probe, closed at once: an open socket here would be handed connections nobody accepts.
            listening_socket(config.host, port, shared=True).close()
        except OSError as error:
            raise listen_error(config.host, name, port, error) from None
    return _Supervisor(config).run()


class _Supervisor:
    def __init__(self, config: Config):
        self._config = config
        self._metrics = WorkerMetrics(CELLS, GAUGES, config.web_concurrency)
        self._workers: dict[int, int] = {}  # pid: index
        self._stopping = False
        self._pid = os.getpid()

    def run(self) -> int:
        for index in range(self._config.web_concurrency):
            self._start(index)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        status = 0
        while self._workers:
            pid, wait_status = _blocking_waitpid(-1, 0)
            if pid not in self._workers:
                continue
            index = self._workers.pop(pid)
            code = os.waitstatus_to_exitcode(wait_status)
            if self._stopping:
                # A worker killed by signal N reports -N: exit as a shell would (128 + N).
                status = status or (code if code >= 0 else 128 - code)
            elif code == BAD_SETTING_STATUS:
                self._stop(signal.SIGTERM)  # the others would fail alike
                status = code
            else:
                logger.warning("worker %d (pid %d) exited with %d; starting another", index + 1, pid, code)
                self._metrics.release(index)
                time.sleep(REPLACE_DELAY_SECONDS)
                if not self._stopping:
                    self._start(index)
        logger.info("ssehub stopped (%d workers)", self._config.web_concurrency)
        return status

    def _start(self, index: int) -> None:
        pid = gevent.os.fork_gevent()
        if pid == 0:
            os._exit(self._work(index))
        self._workers[pid] = index

    def _stop(self, signum, frame=None) -> None:
        self._stopping = True
        for pid in self._workers:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass  # it exited just now; the wait loop collects it

    def _work(self, index: int) -> int:
        """The worker's life, in the forked child; its exit status."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)  # serve() installs the worker's own
        _end_with_the_supervisor(self._pid)
        try:
            app = create_app(self._config)
            app.metrics.join(self._metrics, index)
            return serve(app, worker=f"worker {index + 1} of {self._config.web_concurrency}")
        except ConfigError as error:
            print(f"ssehub: {error}", file=sys.stderr)
            return BAD_SETTING_STATUS
        except BaseException:
            logger.exception("worker %d failed", index + 1)
            return 1
        finally:
            logging.shutdown()


def _end_with_the_supervisor(supervisor: int) -> None:
    """Have the kernel send this worker SIGTERM when the supervisor dies, even
    by SIGKILL, so no worker lives on holding the port and its Redis connections."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        logger.warning("workers will outlive a killed supervisor: prctl failed (errno %d)", ctypes.get_errno())
    if os.getppid() != supervisor:
        os.kill(os.getpid(), signal.SIGTERM)  # it died before prctl
