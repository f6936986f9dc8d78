"""The workloads: each takes the harness and one server and returns plain data for the JSON file.

Rate steps use fresh subscribers on fresh channels each step (one server per
workload), so a step never sees another step's events or slow connections.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Iterator

from . import harness
from .harness import Bench, Running
from .procs import BenchError, cpu_seconds, memory_kib
from .servers import Server

# Steps of a quarter or less near where the servers top out on this machine
# (1,000 subscribers × 60–120 msg/s; 5,000 × 12–24), doubling beyond.
FANOUT_RATES = (20, 40, 60, 80, 100, 120, 160, 240, 320, 640, 1280)
BIG_FANOUT_RATES = (4, 8, 12, 16, 20, 24, 32, 48, 64)
CHANNEL_RATES = (200, 400, 800, 1600, 3200, 6400)
# A step whose publisher could not reach this share of the asked rate fails:
# the server kept up by slowing its publishers down.
MIN_RATE_SHARE = 0.9
MEMORY_SETTLE_SECONDS = 2
STORM_CONNECT_RATE = 2000
# Publishing runs this long before the storm and after it.
STORM_MARGIN_SECONDS = 3
RESTART_AFTER_SECONDS = 10
RESTART_DURATION_SECONDS = 40
# A new hub that cannot bind yet (the old one still holds the port) exits 2; try again until this.
REBIND_SECONDS = 10


def judge(summary: dict, rate: int, p99_limit_ms: float) -> str | None:
    """Why a rate step failed, or None when it passed."""
    for field in ("lost", "duplicates", "out_of_order", "connect_failures", "publish_errors"):
        if summary.get(field):
            return f"{field} {summary[field]}"
    p99, published = summary["latency_p99_ms"], summary["publish_rate"]
    if p99 is None:
        return "no deliveries"
    if p99 > p99_limit_ms:
        return f"p99 {p99:.0f} ms > {p99_limit_ms:.0f}"
    if published is None or published < MIN_RATE_SHARE * rate:
        return f"published {published or 0:.0f}/s of {rate}"
    return None


def rate_step(bench: Bench, running: Running, rate: int, subscribers: int, channels: int, publishers: int) -> dict:
    """One loadgen run at `rate` publishes/s; hub CPU from publishing to drained included."""
    options = {
        "subscribers": subscribers,
        "channels": channels,
        "channel_prefix": f"r{rate}c",
        "events": harness.events_per_channel(bench.scale, rate, channels),
        "rate": rate,
        "publishers": publishers,
    }
    with bench.start(running, **options) as run:
        started = run.wait_phase("publishing")
        cpu_before = cpu_seconds(running.child.pid)
        run.wait_phase("drained")
        cpu_after = cpu_seconds(running.child.pid)
        summary = run.result()
    summary["target_rate"] = rate
    summary["hub_cpu_seconds"] = cpu_after - cpu_before if started else None
    return summary


def step_rates(
    bench: Bench,
    running: Running,
    rates: tuple[int, ...],
    subscribers: int,
    channels: int,
    p99_limit_ms: float,
    publishers: int = 1,
) -> dict:
    """Raise the rate until a step fails; the best is the last step that passed."""
    steps, best = [], None
    for rate in bench.scale.steps(rates):
        summary = rate_step(bench, running, rate, subscribers, channels, publishers)
        summary["failure"] = judge(summary, rate, p99_limit_ms)
        steps.append(summary)
        if summary["failure"]:
            break
        best = summary
    return {
        "p99_limit_ms": p99_limit_ms,
        "subscribers": subscribers,
        "channels": channels,
        "steps": steps,
        "best": best,
    }


def fanout(bench: Bench, server: Server, use_redis: bool = False) -> dict:
    """W1: one channel, 1,000 subscribers."""
    with bench.serving(server, use_redis) as running:
        return step_rates(bench, running, FANOUT_RATES, bench.scale.count(1000), 1, p99_limit_ms=100)


def big_fanout(bench: Bench, server: Server) -> dict:
    """W2: one channel, 5,000 subscribers connecting at 2,000/s; ssehub on Redis."""
    with bench.serving(server, use_redis=True) as running:
        return step_rates(bench, running, BIG_FANOUT_RATES, bench.scale.count(5000), 1, p99_limit_ms=200)


def many_channels(bench: Bench, server: Server) -> dict:
    """W3: 1,000 channels with one subscriber each, four publisher connections; ssehub on Redis."""
    channels = bench.scale.count(1000)
    with bench.serving(server, use_redis=True) as running:
        return step_rates(bench, running, CHANNEL_RATES, channels, channels, p99_limit_ms=10, publishers=4)


def idle_memory(bench: Bench, server: Server, use_redis: bool) -> dict:
    """Server memory growth per held, idle stream (10,000 of them), after the warm-up."""
    streams = bench.held_streams(server, bench.scale.count(10_000))
    settle = bench.scale.seconds(MEMORY_SETTLE_SECONDS)
    options = {"subscribers": streams, "channels": 1, "events": 0, "hold": settle * 2, "channel_prefix": "idle"}
    with bench.serving(server, use_redis) as running:
        before = memory_kib(running.child.pid)
        with bench.start(running, **options) as run:
            live = run.wait_phase("all_live")
            time.sleep(settle)
            during = memory_kib(running.child.pid)
            summary = run.result()
    if live is None:
        raise BenchError(f"{server.name}: the {streams} streams never were all live")
    return {
        "streams": streams,
        "before": before,
        "during": during,
        "rss_kib_per_stream": (during["rss_kib"] - before["rss_kib"]) / streams,
        "pss_kib_per_stream": (during["pss_kib"] - before["pss_kib"]) / streams,
        "loadgen": summary,
    }


def publish_rate(bench: Bench, server: Server, use_redis: bool) -> dict:
    """One keep-alive publisher as fast as it gets answers; one idle subscriber."""
    with bench.serving(server, use_redis) as running:
        return bench.run(
            running,
            subscribers=1,
            channels=1,
            events=bench.scale.count(3000),
            rate=0,
            publishers=1,
            channel_prefix="pub",
        )


def connect_storm(bench: Bench, server: Server) -> dict:
    """ssehub on Redis: 10,000 subscribers arriving at 2,000/s while 20 events/s go to the channel.

    loadgen publishes only once its own streams are all live, so two run at
    once: a steady one (100 subscribers, publishing, checked for loss) and
    the storm on the same channel (timed to all live; it counts the steady
    one's events as foreign).
    """
    storm_size = bench.held_streams(server, bench.scale.count(10_000))
    margin = bench.scale.seconds(STORM_MARGIN_SECONDS)
    steady = {"subscribers": bench.scale.count(100), "channels": 1, "rate": 20, "channel_prefix": "storm"}
    steady["duration"] = storm_size / STORM_CONNECT_RATE + margin * 2
    storm = {"subscribers": storm_size, "channels": 1, "channel_prefix": "storm", "reconnect": True}
    storm.update(connect_rate=STORM_CONNECT_RATE, hold=margin)
    with bench.serving(server, use_redis=True) as running, bench.start(running, **steady) as steady_run:
        publishing = steady_run.wait_phase("publishing")
        if publishing is None:
            raise BenchError("connect storm: the steady subscribers never started publishing")
        time.sleep(margin)
        with bench.start(running, **storm) as storm_run:
            connecting = storm_run.wait_phase("connecting")
            live = storm_run.wait_phase("all_live")
            storm_summary = storm_run.result()
        summary = steady_run.result()
    summary["storm"] = storm_summary
    summary["storm_subscribers"] = storm_size
    summary["seconds_to_all_live"] = live - connecting if live and connecting else None
    return summary


def restart(bench: Bench, server: Server, signum: int) -> dict:
    """ssehub on Redis under 10,000 resuming subscribers: signal it, start a new one on its port."""
    subscribers = bench.held_streams(server, bench.scale.count(10_000))
    options = {
        "subscribers": subscribers,
        "channels": 1,
        "rate": 20,
        "duration": bench.scale.seconds(RESTART_DURATION_SECONDS),
        "reconnect": True,
        "channel_prefix": "restart",
    }
    with bench.serving(server, use_redis=True) as running, bench.start(running, **options) as run:
        publishing = run.wait_phase("publishing")
        if publishing is None:
            raise BenchError("restart: loadgen never started publishing")
        time.sleep(max(0.0, publishing + bench.scale.seconds(RESTART_AFTER_SECONDS) - time.monotonic()))
        signalled = time.monotonic()
        running.child.signal(signum)
        released = wait_port_closed(running.port, REBIND_SECONDS)
        with replacement_hub(bench, running) as listening:
            back = run.wait_phase("all_live", after=listening)
            summary = run.result()
    summary.update(
        signal=signal.Signals(signum).name,
        old_hub_released_port_after_signal=released - signalled,
        new_hub_listening_after_signal=listening - signalled,
        seconds_to_all_live=back - listening if back else None,
    )
    return summary


def wait_port_closed(port: int, timeout: float) -> float:
    """Poll until nothing accepts on port (the old hub stopped listening); return when."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return time.monotonic()
        time.sleep(0.005)
    raise BenchError(f"the old hub still accepts on port {port} {timeout} s after the signal")


@contextlib.contextmanager
def replacement_hub(bench: Bench, old: Running) -> Iterator[float]:
    """A new hub on the old one's port, retried while the port is still held; yields when it answered."""
    deadline = time.monotonic() + REBIND_SECONDS
    while True:
        with old.server.start(bench.setup, old.port, old.use_redis) as child:
            try:
                listening = harness.wait_until_ready(child, old.port)
            except BenchError:
                if time.monotonic() > deadline:
                    raise
                continue
            yield listening
            return
