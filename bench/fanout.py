"""Fan-out benchmark: N idle subscribers, then bursts of publishes to all of them.

The hub runs as `python service.py` in its own process pinned to one core; the
subscribers run here (gevent, raw sockets) on the other core. Reports memory
per idle subscriber (hub RSS growth / N), deliveries per hub CPU-second, loss,
and publish-to-receive latency. Loopback only; bounded in count and time.

    python bench/fanout.py --subscribers 10000 --events 20
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAMP = re.compile(rb"data: (\d+\.\d+)")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Subscriber:
    """Reads one stream, recording the latency of every event it receives."""

    def __init__(self, port, channel):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(f"GET /events?channel={channel} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        self.latencies = []
        self.ready = gevent.event.Event()

    def run(self):
        pending = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return
            now = time.time()
            pending += chunk
            if b"id: " in pending:
                self.ready.set()
            *complete, pending = pending.split(b"\n\n")
            for block in complete:
                match = STAMP.search(block)
                if match:
                    self.latencies.append(now - float(match[1]))


def publish(port, channel, payload):
    body = json.dumps({"channel": channel, "data": f"{time.time():.6f} {payload}"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/publish", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.status == 201


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--payload-bytes", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    parser.add_argument("--redis-url", help="run the hub on the Redis broker (default: the embedded one)")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "HEARTBEAT_SECONDS": "60",
        "CLIENT_QUEUE": str(args.events * 2),
    }
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    hub = subprocess.Popen(
        [sys.executable, "service.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
    )
    os.sched_setaffinity(0, {1} if os.cpu_count() > 1 else {0})
    deadline = time.monotonic() + args.timeout
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("hub did not start") from None
                time.sleep(0.1)
        base_rss = rss_kib(hub.pid)
        subscribers = []
        readers = gevent.pool.Group()
        started = time.monotonic()
        for n in range(args.subscribers):
            subscriber = Subscriber(port, "bench")
            subscribers.append(subscriber)
            readers.spawn(subscriber.run)
            if n % 500 == 499:
                gevent.sleep(0)
        for subscriber in subscribers:
            subscriber.ready.wait(max(1, deadline - time.monotonic()))
        connect_seconds = time.monotonic() - started
        gevent.sleep(1)
        idle_rss = rss_kib(hub.pid)

        payload = "x" * args.payload_bytes
        expected = args.subscribers * args.events
        cpu_before = cpu_seconds(hub.pid)
        started = time.monotonic()
        for _ in range(args.events):
            publish(port, "bench", payload)
        while sum(len(s.latencies) for s in subscribers) < expected and time.monotonic() < deadline:
            gevent.sleep(0.05)
        wall = time.monotonic() - started
        hub_cpu = cpu_seconds(hub.pid) - cpu_before
        latencies = sorted(x for s in subscribers for x in s.latencies)
        received = len(latencies)

        def pct(p):
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

        print(
            json.dumps(
                {
                    "broker": "redis" if args.redis_url else "memory",
                    "subscribers": args.subscribers,
                    "connect_seconds": round(connect_seconds, 2),
                    "hub_rss_mib_idle": round(idle_rss / 1024, 1),
                    "memory_per_idle_subscriber_kib": round((idle_rss - base_rss) / args.subscribers, 2),
                    "events": args.events,
                    "deliveries_expected": expected,
                    "deliveries_received": received,
                    "lost": expected - received,
                    "wall_seconds": round(wall, 2),
                    "hub_cpu_seconds": round(hub_cpu, 2),
                    "deliveries_per_hub_cpu_second": round(received / hub_cpu) if hub_cpu else None,
                    "latency_ms_p50": round(pct(0.50), 1),
                    "latency_ms_p99": round(pct(0.99), 1),
                },
                indent=2,
            )
        )
        return 0 if received == expected else 1
    finally:
        hub.terminate()
        hub.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
