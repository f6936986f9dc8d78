"""Restart benchmark: a hub on Redis restarted (SIGTERM or SIGKILL) under N resuming subscribers.

The hub runs as `python service.py` pinned to one core, with its own
redis-server; the subscribers (raw sockets, EventSource-like: reconnect with
Last-Event-ID after 0.1-0.3 s) and a publisher calling FCALL at a steady rate
run here on the other core. Reports how long until every subscriber is back
and caught up, and per subscriber: events lost, repeated or out of order
against the acknowledged ids. Loopback only; bounded in count and time.

    python bench/restart.py --subscribers 5000 --signal KILL
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHANNEL = "bench"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {timeout} s")
        gevent.sleep(0.05)


class Subscriber:
    """One EventSource-like client over HTTP/1.0 (no chunking): keeps its last
    id, and every event id it received, across reconnects."""

    def __init__(self, port):
        self.port = port
        self.last_id = None
        self.received = []
        self.connects = 0
        self.greenlet = gevent.spawn(self.run)

    def run(self):
        while True:
            try:
                self.read_one_connection()
            except OSError:
                pass
            gevent.sleep(random.uniform(0.1, 0.3))

    def read_one_connection(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            resume = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id else ""
            sock.sendall(f"GET /events?channel={CHANNEL} HTTP/1.0\r\nHost: bench\r\n{resume}\r\n".encode())
            self.connects += 1
            buffer = b""
            while chunk := sock.recv(65536):
                buffer += chunk
                *blocks, buffer = buffer.split(b"\n\n")
                for block in blocks:
                    self.block(block)

    def block(self, block):
        event_id, has_data = None, False
        for line in block.split(b"\n"):
            if line.startswith(b"id: "):
                event_id = line[4:].decode()
            elif line.startswith(b"data:"):
                has_data = True
        if event_id is not None:
            self.last_id = event_id
            if has_data:
                self.received.append(event_id)


class Publisher:
    def __init__(self, redis_url, rate):
        self.client = redis.Redis.from_url(redis_url)
        self.interval = 1 / rate
        self.acknowledged = []
        self.greenlet = gevent.spawn(self.run)

    def run(self):
        while True:
            n = len(self.acknowledged)
            event_id = self.client.fcall("ssehub_publish", 1, f"ssehub:{{{CHANNEL}}}", f"event {n}")
            self.acknowledged.append(event_id.decode())
            gevent.sleep(self.interval)


def start_hub(port, redis_url):
    env = {
        "PATH": os.environ["PATH"],
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "REDIS_URL": redis_url,
        "RETRY_MS": "200",
        "MAX_STREAMS_PER_CLIENT": "0",
    }
    hub = subprocess.Popen(
        [sys.executable, "service.py"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
    )
    wait_until(lambda: _listening(port), 20, "the hub to listen")
    return hub


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=2.0, help="publishes per second")
    parser.add_argument("--signal", choices=["TERM", "KILL"], default="TERM")
    parser.add_argument("--connect-rate", type=float, default=2000.0, help="new connections per second at start")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    directory = tempfile.mkdtemp(prefix="ssehub-bench-")
    redis_port, hub_port = free_port(), free_port()
    redis_server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
        ],
        stdout=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, {1}),
    )
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    hub = None
    try:
        wait_until(lambda: _listening(redis_port), 10, "redis-server")
        hub = start_hub(hub_port, redis_url)
        subscribers = []
        for _ in range(args.subscribers):
            subscribers.append(Subscriber(hub_port))
            gevent.sleep(1 / args.connect_rate)
        wait_until(lambda: all(s.last_id for s in subscribers), 60, "every subscriber to connect")
        publisher = Publisher(redis_url, args.rate)
        gevent.sleep(5)
        hub.send_signal(getattr(signal, f"SIG{args.signal}"))
        hub.wait(timeout=30)
        hub = start_hub(hub_port, redis_url)
        listening = time.monotonic()
        wait_until(lambda: all(s.connects >= 2 for s in subscribers), 60, "every subscriber to reconnect")
        back = time.monotonic() - listening
        target = len(publisher.acknowledged) + 1
        wait_until(lambda: len(publisher.acknowledged) > target, 10, "one more publish")
        wait_until(lambda: all(len(s.received) >= target for s in subscribers), 60, "every subscriber to catch up")
        caught_up = time.monotonic() - listening
        gevent.sleep(5)
        publisher.greenlet.kill()
        acknowledged = list(publisher.acknowledged)
        wait_until(lambda: all(len(s.received) >= len(acknowledged) for s in subscribers), 60, "the last events")
        lost = sum(len(set(acknowledged) - set(s.received)) for s in subscribers)
        repeated = sum(len(s.received) - len(set(s.received)) for s in subscribers)
        disordered = sum(s.received != sorted(s.received, key=_order) for s in subscribers)
        print(
            f"subscribers={args.subscribers} signal=SIG{args.signal} publishes={len(acknowledged)} rate={args.rate}/s"
        )
        print(f"every subscriber reconnected {back:.2f} s and caught up {caught_up:.2f} s after the new hub listened")
        print(
            f"lost={lost} repeated={repeated} out_of_order_subscribers={disordered} "
            f"(of {len(acknowledged) * args.subscribers} deliveries owed)"
        )
    finally:
        if hub is not None:
            hub.kill()
        redis_server.kill()
        shutil.rmtree(directory, ignore_errors=True)


def _order(event_id):
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


if __name__ == "__main__":
    main()
