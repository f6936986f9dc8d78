"""Running the hub as a process: logging, the open-file limit, pywsgi, and signals.

SIGTERM or SIGINT stops accepting, ends open streams so browsers reconnect
elsewhere, waits a few seconds for them to finish, and returns exit status 0.
"""

from __future__ import annotations

import logging
import resource
import signal

import gevent
import gevent.pool
from gevent.pywsgi import WSGIServer

from .app import SSEHubApp

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 5
# Sockets besides subscribers: listener, broker connections, logs, slack.
SPARE_FILES = 64
TARGET_SUBSCRIBERS = 10_000


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one: each subscriber holds a socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as error:
            logger.warning("could not raise the open-file limit from %d: %s", soft, error)
    if soft < TARGET_SUBSCRIBERS + SPARE_FILES:
        logger.warning(
            "open-file limit is %d: at most about %d concurrent subscribers; raise it with `ulimit -n`",
            soft,
            soft - SPARE_FILES,
        )
    return soft


def serve(app: SSEHubApp) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    config = app.config
    files = raise_open_file_limit()
    handlers = gevent.pool.Pool()
    server = WSGIServer(
        (config.host, config.port),
        app,
        spawn=handlers,
        backlog=2048,
        log=logging.getLogger("ssehub.access"),
        error_log=logging.getLogger("ssehub.server"),
    )
    server.start()
    host, port = server.address[:2]
    logger.info("ssehub listening on http://%s:%d (open-file limit %d)", host, port, files)
    logger.info("broker: %s", app.broker.description)
    if config.publish_token is None:
        logger.warning("PUBLISH_TOKEN is unset: only clients on this machine (loopback) may publish")
    if config.secret_key is None and config.chat_channels:
        logger.warning("SECRET_KEY is unset: chat names last until this process restarts; set it when scaling out")

    def stop(signum: int) -> None:
        logger.info("%s: closing streams and stopping", signal.Signals(signum).name)
        server.close()
        app.shutdown()
        server.stop(timeout=SHUTDOWN_GRACE_SECONDS)

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, lambda signum=signum: gevent.spawn(stop, signum))
    server.serve_forever()
    app.close()
    logger.info("ssehub stopped")
    return 0

