"""Running the hub as a process: logging, the open-file limit, pywsgi, and signals.

SIGTERM or SIGINT stops accepting, ends open streams so browsers reconnect
elsewhere, waits a few seconds for them to finish, and returns exit status 0.
"""

from __future__ import annotations

import errno
import json
import logging
import resource
import signal
import socket
import weakref

import gevent
import gevent.pool
from gevent.pywsgi import WSGIServer

from . import direct, expiry, log_format, request_ids
from .app import SSEHubApp
from .config import Config, ConfigError
from .framing import StrictFramingHandler

logger = logging.getLogger(__name__)


def _refusal(status: str, message: str) -> bytes:
    """A whole response refusing a request before the app sees it, with the usual JSON error."""
    body = json.dumps({"error": message}).encode()
    head = f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: application/json\r\n"
    return head.encode() + b"Content-Length: %d\r\n\r\n%b" % (len(body), body)


REQUEST_TIMEOUT_RESPONSE = _refusal("408 Request Timeout", "the request head took too long to arrive")
URL_TOO_LONG_RESPONSE = _refusal(
    "414 URI Too Long",
    "the URL is over 8 KB; send a long token as Authorization: Bearer or the ssehub_token cookie, not ?token=",
)
BAD_REQUEST_RESPONSE = _refusal(
    "400 Bad Request", "the request line or headers could not be read (malformed, or a header over 64 KB)"
)

SHUTDOWN_GRACE_SECONDS = 5
# Connections waiting to be accepted; the kernel caps it at net.core.somaxconn.
# A restart under 10,000 subscribers brings them all back within a second: a
# connection that does not fit is retried by its client 1, 3, 7 s later.
BACKLOG = 65535
READ_BUFFER_BYTES = 1024
# Sockets besides subscribers: listener, broker connections, logs, slack.
SPARE_FILES = 64
TARGET_SUBSCRIBERS = 10_000


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


class TimedHandler(StrictFramingHandler):
    """pywsgi's handler with two deadlines (issue 9): a whole request head
    within `head_timeout` (slowloris), each write within `write_timeout` (a
    client that stopped reading is dropped, and its stream released)."""

    head_timeout = Config.request_head_timeout
    write_timeout = Config.write_timeout
    access_log = Config.access_log

    def __init__(self, sock, address, server):
        super().__init__(sock, address, server)
        # pywsgi reads through an 8 KiB buffer, held as long as the
        # connection: most of an idle stream's memory. Request heads are
        # small and large bodies bypass the buffer (issue 12, item 5).
        self.rfile = sock.makefile("rb", READ_BUFFER_BYTES)

    def handle(self):
        # pywsgi sends a response's head and body separately; without
        # TCP_NODELAY the body waits for the client's delayed ACK, about 40 ms
        # a response, which capped one publisher at 22 requests/s (issue 12).
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super().handle()

    def handle_one_request(self):
        self._head_deadline = gevent.Timeout.start_new(self.head_timeout, TimeoutError("request head too slow"))
        try:
            result = super().handle_one_request()
        finally:
            self._head_deadline.cancel()
        if isinstance(result, tuple) and result[0] == "414":
            return ("414", URL_TOO_LONG_RESPONSE)
        return result

    def get_environ(self):
        environ = super().get_environ()
        environ[direct.ENVIRON_KEY] = weakref.ref(self)  # a live stream may take the connection over
        return environ

    def handle_one_response(self):
        self._head_deadline.cancel()
        self.socket.settimeout(self.write_timeout)
        return super().handle_one_response()

    def _sendall(self, data):
        # A stream's write never outlives its token (issue 11): a reader that
        # takes a trickle would otherwise keep it open up to WRITE_TIMEOUT past.
        expires_at = self._expires_at()
        if expires_at is not None:
            self.socket.settimeout(expiry.write_wait(self.write_timeout, expires_at))
        super()._sendall(data)

    def _expires_at(self) -> float | None:
        """When the token of the stream this connection serves runs out (app.on_events says)."""
        return self.environ.get(expiry.ENVIRON_KEY) if self.environ else None

    def log_request(self):
        if not self.access_log:
            return
        status = (self._orig_status or self.status or "000").split()[0]
        log_format.log_access(
            self.environ or {},
            self.command,
            self.path or "",
            int(status) if status.isdigit() else 0,
            self.response_length,
            (self.time_finish or self.time_start) - self.time_start,
        )

    def _handle_client_error(self, ex):
        # pywsgi prints a traceback for any client error that is not a
        # ValueError; a slow head is routine on the internet: one line.
        if isinstance(ex, TimeoutError):
            logger.info("dropped %s: its request head took over %s s", self.client_address, self.head_timeout)
            return ("408", REQUEST_TIMEOUT_RESPONSE)
        status, _ = super()._handle_client_error(ex)
        return (status, BAD_REQUEST_RESPONSE)

    def handle_error(self, t, v, tb):
        if issubclass(t, TimeoutError):
            # A write that did not finish within WRITE_TIMEOUT (the client stopped
            # reading), or before the stream's token ran out.
            if not expiry.has_passed(self._expires_at()):
                logger.info("dropped %s: a write took over %s s", self.client_address, self.write_timeout)
            self.close_connection = True
            return
        super().handle_error(t, v, tb)


def wsgi_server(application, config: Config, address: tuple[str, int] | socket.socket, **options) -> HubServer:
    """pywsgi serving `application` with the deadlines from `config`."""
    handler = type(
        "Handler",
        (TimedHandler,),
        {
            "head_timeout": config.request_head_timeout,
            "write_timeout": config.write_timeout,
            "access_log": config.access_log,
        },
    )
    return HubServer(address, application, handler_class=handler, **options)


class HubServer(WSGIServer):
    def do_close(self, sock, *args):
        """Close a connection whose request is done, unless a live stream took it over."""
        if not direct.handed_over(sock):
            super().do_close(sock, *args)


def listening_socket(host: str, port: int, shared: bool) -> socket.socket:
    """The socket to accept on; `shared` lets the other workers bind it too
    (SO_REUSEPORT) and the kernel spread connections across them (issue 12, item 6)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(BACKLOG)
    listener.setblocking(False)
    return listener


def serve(app: SSEHubApp, worker: str = "") -> int:
    """Serve until SIGTERM or SIGINT; return the exit status. A `worker`
    (its name, for the log) shares the port with the others.

    Raises ConfigError when HOST and PORT cannot be listened on.
    """
    config = app.config
    files = raise_open_file_limit()
    if files - SPARE_FILES < config.max_streams:
        app.limits.total = max(1, files - SPARE_FILES)
    try:
        server = _started(app, config, "PORT", config.port, shared=bool(worker))
    except ConfigError:
        app.close()
        raise
    try:
        metrics_server = start_metrics_server(app, shared=bool(worker))
    except ConfigError:
        server.stop()
        app.close()
        raise
    host, port = server.address[:2]
    logger.info(
        "ssehub %slistening on http://%s:%d (open-file limit %d, at most %d streams)",
        f"{worker} " if worker else "",
        host,
        port,
        files,
        app.limits.total,
    )
    if metrics_server is not None:
        logger.info("metrics on http://%s:%d/metrics (not on PORT)", host, config.metrics_port)
    logger.info("broker: %s", app.broker.description)
    if config.publish_token is None:
        logger.warning(
            "PUBLISH_TOKEN is unset: ANYONE WHO CAN RUN A PROGRAM ON THIS MACHINE MAY PUBLISH. Requests from "
            "other machines, with a proxy's forwarding headers or from web pages of other sites are refused, "
            "but a proxy that adds no forwarding header looks local: set PUBLISH_TOKEN before using one"
        )
    if config.private_channels:
        public = ", ".join(config.readable_without_token) or "none"
        logger.info(
            "private channels: tokens signed with %s are verified; public channels (readable without one): %s",
            " or ".join(app.access.verifier.algorithms) if app.access.verifier else "-",
            public,
        )
    private_chat = [channel for channel in config.chat_channels if not app.access.public.covers(channel)]
    if private_chat:
        logger.warning(
            "chat channels %s are private: the demo page at / reads and posts there only with an ssehub_token "
            "cookie; widgets need data-token-url (list them in PUBLIC_CHANNELS for open chat)",
            ", ".join(private_chat),
        )
    if config.secret_key is None and config.chat_channels:
        logger.warning("SECRET_KEY is unset: chat names last until this process restarts; set it when scaling out")

    def stop(signum: int) -> None:
        if server.closed:
            return  # a second signal (a terminal's SIGINT reaches every worker and their supervisor)
        logger.info("%s: closing streams and stopping", signal.Signals(signum).name)
        server.close()
        app.shutdown()
        server.stop(timeout=SHUTDOWN_GRACE_SECONDS)
        if metrics_server is not None:
            metrics_server.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, lambda signum=signum: gevent.spawn(stop, signum))
    server.serve_forever()
    app.close()
    logger.info("ssehub stopped")
    return 0


def start_metrics_server(app: SSEHubApp, shared: bool) -> HubServer | None:
    """The server of /metrics on METRICS_PORT, started; None when it is unset.

    Raises ConfigError when it cannot listen there.
    """
    port = app.config.metrics_port
    if port is None:
        return None
    return _started(request_ids.returning_it(app.metrics.wsgi), app.config, "METRICS_PORT", port, shared)


def _started(application, config: Config, name: str, port: int, shared: bool) -> HubServer:
    """A started server of `application` on HOST and `port` (the setting `name`).

    Raises ConfigError, naming the setting, when it cannot listen there.
    """
    try:
        server = wsgi_server(
            application,
            config,
            listening_socket(config.host, port, shared),
            spawn=gevent.pool.Pool(),
            log=logging.getLogger("ssehub.access"),
            error_log=logging.getLogger("ssehub.server"),
        )
        server.start()
    except OSError as error:
        raise listen_error(config.host, name, port, error) from None
    return server


def listen_error(host: str, name: str, port: int, error: OSError) -> ConfigError:
    """The one line saying why HOST and the port setting `name` cannot be listened on."""
    if error.errno == errno.EADDRINUSE:
        return ConfigError(f"{name}={port} is in use; stop what holds it or set {name} to a free port")
    return ConfigError(
        f"HOST={host} cannot be listened on ({error.strerror or error}); "
        "set HOST to an address of this machine, such as 0.0.0.0 or 127.0.0.1"
    )
