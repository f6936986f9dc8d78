"""ssehub under gunicorn (issue 14, item 5):

    gunicorn -c gunicorn.conf.py service:app                          (a checkout)
    gunicorn -c python:ssehub.gunicorn_conf ssehub.wsgi:app           (pip install 'ssehub[gunicorn]')

gevent workers (one connection per subscriber, thousands each), $WEB_CONCURRENCY
of them on 0.0.0.0:$PORT, the hub's own log lines in its LOG_FORMAT, and on
SIGTERM every stream ended at once so browsers reconnect (to another process)
instead of being cut when the graceful timeout runs out, and /metrics (on PORT
or METRICS_PORT) reporting every worker as one: the master makes the shared
rows of worker_metrics.py and gives each worker one. Needs
`pip install 'ssehub[gunicorn]'` (gunicorn, and `packaging` for its gevent worker).

The master imports nothing of ssehub but its log format and metric cells:
gevent patches the workers, and modules that open sockets must be imported after that.
"""

import os
import signal
import sys

from gunicorn.glogging import Logger

from ssehub import log_format
from ssehub.meters import CELLS, GAUGES
from ssehub.worker_metrics import WorkerMetrics

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_class = "gevent"
# Open connections per worker: streams are most of them.
worker_connections = int(os.environ.get("MAX_STREAMS", "10000")) + 100
# Streams end at once on SIGTERM, so this is only for requests mid-flight;
# it fits inside a PaaS's stop window (Heroku: 30 s, Kubernetes: 30 s).
graceful_timeout = 10
# Streams are long requests: the worker's heartbeat, not a request deadline.
timeout = 30
# Seconds an idle keep-alive connection is kept (gunicorn's default): after
# SIGTERM a worker waits for these too, so a long one would delay its exit.
keepalive = 2
accesslog = "-" if os.environ.get("ACCESS_LOG", "").strip().lower() in ("1", "true", "yes", "on") else None
# Rows for the workers' figures, per worker: a HUP starts the new workers
# before the old ones stop, and TTIN adds more.
METRICS_ROWS_PER_WORKER = 4
MIN_METRICS_ROWS = 64
# gunicorn's exit status for a worker that could not boot: the master then stops.
WORKER_BOOT_ERROR = 3


class HubLogger(Logger):
    """gunicorn's lines and the hub's through one handler in LOG_FORMAT, and access
    lines with the fields `python service.py` writes (server.TimedHandler.log_request)."""

    def setup(self, cfg):
        super().setup(cfg)
        level = os.environ.get("LOG_LEVEL", "info").strip().upper()
        log_format.configure(level, os.environ.get("LOG_FORMAT", "text").strip().lower())
        for log in (self.error_log, self.access_log):
            log.handlers.clear()
            log.propagate = True

    def access(self, resp, req, environ, request_time):
        if self.access_log_enabled:
            path = req.path + (f"?{req.query}" if req.query else "")
            sent = getattr(resp, "sent", 0)
            log_format.log_access(environ, req.method, path, resp.status_code, sent, request_time.total_seconds())


logger_class = HubLogger


def on_starting(server):
    """Several workers need Redis, as with python service.py (WEB_CONCURRENCY or -w alike);
    the workers' figures get shared rows before any worker forks."""
    if server.cfg.workers > 1 and not os.environ.get("REDIS_URL", "").strip():
        raise SystemExit(
            f"ssehub: {server.cfg.workers} gunicorn workers need REDIS_URL: each worker's embedded broker would "
            "keep its own events, so subscribers would miss what other workers publish; set REDIS_URL or use 1 worker"
        )
    rows = max(MIN_METRICS_ROWS, METRICS_ROWS_PER_WORKER * server.cfg.workers)
    server.ssehub_metrics = WorkerMetrics(CELLS, GAUGES, rows)


def pre_fork(server, worker):
    """In the master: the new worker's row, the first no living worker holds."""
    taken = {getattr(other, "ssehub_row", None) for other in server.WORKERS.values()}
    worker.ssehub_metrics = server.ssehub_metrics
    worker.ssehub_row = server.ssehub_metrics.free_row(taken)


def child_exit(server, worker):
    """In the master: a worker ended; its counts stay in the totals, its row is freed."""
    if worker.ssehub_row is not None:
        server.ssehub_metrics.release(worker.ssehub_row)


def worker_exit(server, worker):
    """In the worker, as it ends: its last counts recorded. gunicorn also calls this
    in the master, instead of child_exit, for a worker that vanished: its row is freed."""
    if os.getpid() == server.pid:
        child_exit(server, worker)
        return
    metrics = getattr(getattr(worker, "wsgi", None), "metrics", None)
    if metrics is not None:
        metrics.close()


def post_worker_init(worker):
    """Each worker: the open-file limit raised (a stream is a socket), and SIGTERM
    ending every stream at once, then gunicorn's own exit."""
    import gevent

    from ssehub.config import ConfigError
    from ssehub.server import raise_open_file_limit, start_metrics_server

    raise_open_file_limit()
    app = worker.wsgi
    app.metrics.join(worker.ssehub_metrics, worker.ssehub_row)
    try:
        start_metrics_server(app, shared=True)
    except ConfigError as error:
        print(f"ssehub: {error}", file=sys.stderr)
        sys.exit(WORKER_BOOT_ERROR)

    def end_streams_and_exit(signum, frame):
        worker.handle_exit(signum, frame)
        gevent.spawn(app.shutdown)

    signal.signal(signal.SIGTERM, end_streams_and_exit)


def worker_int(worker):
    """SIGINT/SIGQUIT: the same, before gunicorn's quick exit."""
    worker.wsgi.shutdown()
