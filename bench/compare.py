"""Compare ssehub with its peers on this machine: nginx+Nchan, sse-starlette (uvicorn), flask-sse (gunicorn).

Each server runs pinned to core 0; bench/loadgen and the bench's own
redis-server run on core 1; loopback only, every run bounded in time. Prints
a markdown table and writes every loadgen summary to bench/results/.
Standard library only, so any Python 3.11+ runs it:

    python3 bench/compare.py --quick                  # a smoke run, under two minutes
    python3 bench/compare.py --only ssehub,nchan --workloads w1,memory
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import NamedTuple

from comparison import loadgen, report, workloads
from comparison.harness import Bench, Scale
from comparison.procs import BenchError, Child, free_port, wait_redis
from comparison.servers import NCHAN_MODULE, SERVERS, Server, Setup

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS_VENV = BENCH / ".venv-peers"
REDIS_CORE = 1
WORKLOADS = ("w1", "w2", "w3", "memory", "publish", "storm", "restart")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SERVERS), help=f"servers, comma-separated: {','.join(SERVERS)}")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated: {','.join(WORKLOADS)}")
    parser.add_argument("--quick", action="store_true", help="a smoke run: counts ÷10, times ÷8, every other rate")
    parser.add_argument("--workers", type=int, help="ssehub processes (WEB_CONCURRENCY); unset: ssehub's default")
    parser.add_argument("--timeout", type=float, help="give up after this many seconds (default 300 quick, 3600)")
    args = parser.parse_args(argv)
    args.only = _names(parser, args.only, SERVERS)
    args.workloads = _names(parser, args.workloads, WORKLOADS)
    args.timeout = args.timeout or (300 if args.quick else 3600)
    return args


def _names(parser: argparse.ArgumentParser, raw: str, known) -> list[str]:
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if unknown := [name for name in names if name not in known]:
        parser.error(f"unknown: {', '.join(unknown)}; choose from {', '.join(known)}")
    return names


class Step(NamedTuple):
    """One workload on one server: the result's key, its column, and what runs it."""

    workload: str
    column: str
    run: Callable[[Bench], dict]


def plan(servers: list[str], chosen: list[str]) -> list[Step]:
    return [step for workload in chosen for name in servers for step in steps_of(workload, SERVERS[name])]


def steps_of(workload: str, server: Server) -> list[Step]:
    """ssehub runs W2, W3, the storm and the restarts on Redis; W1, memory and
    publishing on both brokers; with private channels, the storm and the
    restarts. The peers run what they are."""
    hub = server.name == "ssehub"
    if server.name == "ssehub-private" and workload not in ("storm", "restart"):
        return []
    if workload in ("w2", "w3"):
        run = workloads.big_fanout if workload == "w2" else workloads.many_channels
        return [Step(workload, "ssehub-redis" if hub else server.name, partial(run, server=server))]
    if workload in ("w1", "memory", "publish"):
        measure = {"w1": workloads.fanout, "memory": workloads.idle_memory, "publish": workloads.publish_rate}[workload]
        steps = [Step(workload, server.name, partial(measure, server=server, use_redis=False))]
        if hub:
            steps.append(Step(workload, "ssehub-redis", partial(measure, server=server, use_redis=True)))
        return steps
    if not server.name.startswith("ssehub"):
        return []
    if workload == "storm":
        return [Step("storm", f"{server.name}-redis", partial(workloads.connect_storm, server=server))]
    return [
        Step(
            f"restart-{signum.name[3:].lower()}",
            f"{server.name}-redis",
            partial(workloads.restart, server=server, signum=signum),
        )
        for signum in (signal.SIGTERM, signal.SIGKILL)
    ]


def raise_open_file_limit() -> None:
    """Children inherit it: 10,000 streams need 10,000 files on each side."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def stop_on_signals(timeout: float) -> None:
    """SIGTERM and the overall deadline unwind like Ctrl-C, so every child is stopped on the way out."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(int(timeout))


def ensure_hub_venv() -> Path:
    """The project's .venv with ssehub's runtime packages (the Makefile's own target)."""
    subprocess.run(["make", "-s", ".venv/.runtime"], cwd=ROOT, check=True, timeout=900)
    return ROOT / ".venv" / "bin" / "python"


def ensure_peers_venv() -> Path:
    """bench/.venv-peers with bench/requirements-peers.txt, reinstalled when that file changes."""
    requirements, stamp = BENCH / "requirements-peers.txt", PEERS_VENV / ".installed"
    if not (PEERS_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True, timeout=300)
    if not stamp.exists() or stamp.stat().st_mtime < requirements.stat().st_mtime:
        pip = [str(PEERS_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(requirements)], check=True, timeout=900)
        stamp.touch()
    return PEERS_VENV / "bin"


def ensure_nchan() -> None:
    """nginx and Debian's Nchan module, installed as the Makefile installs system packages."""
    if shutil.which("nginx") and NCHAN_MODULE.exists():
        return
    packages = ["nginx-light", "libnginx-mod-nchan"]
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(f"nginx+Nchan is missing: sudo apt-get install {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env, timeout=900)


@contextlib.contextmanager
def bench_redis(run_dir: Path) -> Iterator[str]:
    """A redis-server of the bench's own, on core 1, no persistence; yields its URL."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    # flask-sse holds one Redis connection per stream.
    argv += ["--maxclients", "19000", "--dir", str(run_dir)]
    with Child("redis-server", argv, run_dir / "redis.log", REDIS_CORE) as child:
        wait_redis(child, port, timeout=10)
        yield f"redis://127.0.0.1:{port}/0"


def prepare(args: argparse.Namespace, run_dir: Path, redis_url: str) -> Bench:
    """Everything the chosen servers need, built or installed where missing."""
    try:
        binary = loadgen.build(BENCH)
    except loadgen.LoadgenFailed as error:
        raise SystemExit(f"compare: {error}") from None
    if "nchan" in args.only:
        ensure_nchan()
    peers_bin = ensure_peers_venv() if {"starlette", "flask-sse"} & set(args.only) else PEERS_VENV / "bin"
    setup = Setup(ROOT, run_dir, redis_url, ensure_hub_venv(), peers_bin, args.workers)
    return Bench(setup, binary, Scale(args.quick), run_dir / "loadgen.log")


def run_plan(bench: Bench, steps: list[Step]) -> dict:
    """Every (workload, column) in turn; a failing one is recorded and the rest still run."""
    results: dict[str, dict] = {}
    for workload, column, run in steps:
        started = time.monotonic()
        print(f"{workload} {column} ...", file=sys.stderr, flush=True)
        try:
            results.setdefault(workload, {})[column] = run(bench)
        except BenchError as error:
            results[workload][column] = {"error": str(error)}
            print(f"  failed: {error}", file=sys.stderr)
        print(f"  {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_open_file_limit()
    stop_on_signals(args.timeout)
    started = datetime.datetime.now().astimezone()
    stamp = started.strftime("%Y-%m-%dT%H%M%S") + ("-quick" if args.quick else "")
    # Every server's log, loadgen's phase lines, nginx's prefix: kept beside the results.
    run_dir = BENCH / "results" / stamp
    run_dir.mkdir(parents=True)
    try:
        with bench_redis(run_dir) as redis_url:
            bench = prepare(args, run_dir, redis_url)
            machine = report.machine_info(bench.setup)
            results = run_plan(bench, plan(args.only, args.workloads))
    except KeyboardInterrupt as interrupt:
        # SIGALRM is the --timeout running out.
        print(f"compare: stopped ({interrupt or 'SIGINT'}); logs in {run_dir}", file=sys.stderr)
        return 130
    output = BENCH / "results" / f"{stamp}.json"
    document = {"date": started.isoformat(), "options": vars(args), "machine": machine, "results": results}
    report.write_json(output, document)
    print(report.render(started, machine, results, output.relative_to(ROOT), run_dir.relative_to(ROOT)))
    return 1 if report.errors(results) else 0


if __name__ == "__main__":
    sys.exit(main())
