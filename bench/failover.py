"""Failovers at production scale (issue 13): thousands of resuming subscribers
on one hub over a Redis Cluster or a Sentinel pair, bench/loadgen (C, on core 1)
publishing throughout and counting loss, duplicates and order, while a primary
fails over, is killed and comes back. Also what PUBLISH_ACK=replica costs.

    python3 bench/failover.py [--subscribers 5000] [--seconds 40]

Prints one JSON object per scenario. Needs what `make test` installs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from comparison.loadgen import Run, build  # noqa: E402

from tests.redis_cluster_nodes import ClusterNodes  # noqa: E402
from tests.redis_sentinels import SentinelSet  # noqa: E402
from tests.redis_server import free_port  # noqa: E402

HUB_CORE = 0
CHANNELS = 6


class _Endpoints:
    """ssehub's paths are loadgen's defaults."""

    def loadgen_args(self) -> list[str]:
        return []


def hub(redis_url: str, log: Path, **settings: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOST": "127.0.0.1", "PORT": str(port), "REDIS_URL": redis_url}
    env.update(MAX_STREAMS_PER_CLIENT="0", MAX_STREAMS="20000", HEARTBEAT_SECONDS="5", **settings)
    process = subprocess.Popen(
        ["taskset", "-c", str(HUB_CORE), str(ROOT / ".venv" / "bin" / "python"), "service.py"],
        cwd=ROOT,
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while "listening on" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the hub did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return process, port


def under_load(binary: Path, port: int, work: Path, options: dict, faults) -> dict:
    """loadgen with `options`; `faults(started)` runs on a thread once it publishes."""
    with Run(binary, port, _Endpoints(), options, work / "loadgen.log") as run:  # type: ignore[arg-type]
        publishing = run.wait_phase("publishing")
        if publishing is None:
            raise RuntimeError(f"loadgen never published: {run.noise[-5:]}")
        timeline: list[tuple[float, str]] = []
        acting = threading.Thread(target=faults, args=(publishing, timeline))
        acting.start()
        summary = run.result()
        acting.join()
    summary["faults"] = [(round(at - publishing, 2), what) for at, what in timeline]
    return summary


def cluster_scenario(binary: Path, work: Path, subscribers: int, seconds: float) -> dict:
    cluster = ClusterNodes(str(work / "cluster")).start()

    def faults(at: Callable[[float], None], timeline: list) -> None:
        at(0.2)
        cluster.failover(cluster.replica_of(cluster.primary_for("ssehub:{c0}")))
        timeline.append((time.monotonic(), "CLUSTER FAILOVER done"))
        at(0.4)
        victim = cluster.primary_for("ssehub:{c1}")
        cluster.kill(victim)
        timeline.append((time.monotonic(), "primary killed"))
        cluster.wait_ok()
        timeline.append((time.monotonic(), "replica promoted"))
        at(0.6)
        cluster.restart(victim)
        timeline.append((time.monotonic(), "old primary back as a replica"))

    return _scenario("cluster: failover, killed primary", cluster, binary, work, subscribers, seconds, faults)


def sentinel_scenario(binary: Path, work: Path, subscribers: int, seconds: float) -> dict:
    sentinels = SentinelSet(str(work / "sentinel")).start()

    def faults(at: Callable[[float], None], timeline: list) -> None:
        at(0.2)
        timeline.append((time.monotonic(), "SENTINEL FAILOVER asked"))
        sentinels.failover()
        timeline.append((time.monotonic(), "old primary demoted and in sync"))

    return _scenario("sentinel: SENTINEL FAILOVER", sentinels, binary, work, subscribers, seconds, faults)


def _scenario(name: str, topology, binary: Path, work: Path, subscribers: int, seconds: float, faults) -> dict:
    """One hub on `topology` under load while `faults(at, timeline)` runs: `at(f)`
    sleeps until the fraction f of the run, `timeline` collects what was done when."""
    process, port = hub(topology.url, work / f"hub-{name.split(':')[0]}.log")
    try:

        def timed_faults(started: float, timeline: list) -> None:
            faults(lambda fraction: time.sleep(max(0.0, started + seconds * fraction - time.monotonic())), timeline)

        return {"scenario": name, **under_load(binary, port, work, _options(subscribers, seconds), timed_faults)}
    finally:
        process.kill()
        topology.stop()


def acknowledgement_cost(binary: Path, work: Path) -> list[dict]:
    """Publishes answered per second by one keep-alive publisher, with a replica, by PUBLISH_ACK."""
    sentinels = SentinelSet(str(work / "ack")).start()
    results = []
    try:
        for ack in ("primary", "replica"):
            process, port = hub(sentinels.url, work / f"hub-ack-{ack}.log", PUBLISH_ACK=ack)
            try:
                options = {"subscribers": 1, "channels": 1, "events": 5000, "rate": 0, "channel_prefix": f"a{ack}"}
                summary = under_load(binary, port, work, options, lambda started, timeline: None)
                results.append({"scenario": f"publish rate, PUBLISH_ACK={ack}", **summary})
            finally:
                process.kill()
    finally:
        sentinels.stop()
    return results


def _options(subscribers: int, seconds: float) -> dict:
    return {
        "subscribers": subscribers,
        "channels": CHANNELS,
        "rate": 100,
        "duration": seconds,
        "reconnect": True,
        "connect_rate": 2000,
        "pub_timeout": 10,
        "drain_timeout": 30,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=40)
    args = parser.parse_args()
    binary = build(BENCH)
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        for result in [
            cluster_scenario(binary, work, args.subscribers, args.seconds),
            sentinel_scenario(binary, work, args.subscribers, args.seconds),
            *acknowledgement_cost(binary, work),
        ]:
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
