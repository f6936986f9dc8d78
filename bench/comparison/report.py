"""The comparison's output: the machine and versions, a markdown table, the raw results as JSON.

Rows are figures, columns servers; every cell is taken from the results
dict, which is also written whole to bench/results/<date>.json.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path

COLUMNS = ("ssehub", "ssehub-redis", "ssehub-private-redis", "nchan", "starlette", "flask-sse")
HEADINGS = {
    "ssehub": "ssehub (embedded)",
    "ssehub-redis": "ssehub (Redis)",
    "ssehub-private-redis": "ssehub (Redis, private channels)",
    "nchan": "nginx+Nchan",
    "starlette": "sse-starlette",
    "flask-sse": "flask-sse",
}
PEER_PACKAGES = (
    "uvicorn",
    "sse-starlette",
    "starlette",
    "flask-sse",
    "flask",
    "gunicorn",
    "gevent",
    "uvloop",
    "httptools",
)


@dataclasses.dataclass(frozen=True)
class Row:
    label: str
    workload: str
    # cell(result of one server) -> number, or None for no figure.
    value: Callable[[dict], float | None]
    digits: int = 0
    # ssehub/nchan makes sense: the same quantity under the same load (not
    # so for a p99 at each server's own best rate).
    ratio: bool = True


def best(field: str) -> Callable[[dict], float | None]:
    return lambda result: (result.get("best") or {}).get(field)


def field(name: str) -> Callable[[dict], float | None]:
    return lambda result: result.get(name)


def cpu_per_delivery(result: dict) -> float | None:
    step = result.get("best") or {}
    if not step.get("delivered") or step.get("hub_cpu_seconds") is None:
        return None
    return step["hub_cpu_seconds"] / step["delivered"] * 1e6


def restart_rows(signal_name: str, workload: str) -> tuple[Row, Row]:
    """The two rows of one restart workload: time to all live again, and loss."""
    return (
        Row(
            f"Restart {signal_name}, {{subscribers:,}} subs: s from new hub up to all live",
            workload,
            field("seconds_to_all_live"),
            digits=2,
            ratio=False,
        ),
        Row(f"Restart {signal_name}: lost", workload, field("lost"), ratio=False),
    )


ROWS = (
    Row("W1 fan-out, 1 channel × {subscribers:,} subs, p99 ≤ 100 ms: best msg/s", "w1", best("target_rate")),
    Row("W1 deliveries/s at best", "w1", best("deliveries_per_s")),
    Row("W1 p99 ms at best", "w1", best("latency_p99_ms"), digits=1, ratio=False),
    Row("CPU µs per delivery (W1 best step)", "w1", cpu_per_delivery, digits=1),
    Row("W2 fan-out, 1 channel × {subscribers:,} subs, p99 ≤ 200 ms: best msg/s", "w2", best("target_rate")),
    Row("W2 deliveries/s at best", "w2", best("deliveries_per_s")),
    Row("W2 p99 ms at best", "w2", best("latency_p99_ms"), digits=1, ratio=False),
    Row("W3 {channels:,} channels × 1 sub, 4 publishers, p99 ≤ 10 ms: best msg/s", "w3", best("target_rate")),
    Row("W3 p99 ms at best", "w3", best("latency_p99_ms"), digits=2, ratio=False),
    Row("Idle memory, {streams:,} streams: RSS KiB per stream", "memory", field("rss_kib_per_stream"), digits=1),
    Row("Idle memory: PSS KiB per stream", "memory", field("pss_kib_per_stream"), digits=1),
    Row("Publish, 1 keep-alive connection: publishes/s", "publish", field("publish_rate")),
    Row("Publish p99 ms", "publish", field("publish_p99_ms"), digits=2),
    Row(
        "Connect storm, {storm_subscribers:,} at 2,000/s: s to all live",
        "storm",
        field("seconds_to_all_live"),
        digits=2,
        ratio=False,
    ),
    Row("Connect storm: lost by {subscribers:,} steady subs", "storm", field("lost"), ratio=False),
    *restart_rows("SIGTERM", "restart-term"),
    *restart_rows("SIGKILL", "restart-kill"),
)


def machine_info(setup) -> dict:
    """What the figures depend on besides the code: CPU, kernel, Python, every peer's version."""
    return {
        "cpu": _cpu_model(),
        "cores": _command(["nproc"]),
        "kernel": platform.release(),
        "ssehub commit": _command(["git", "-C", str(setup.root), "describe", "--always", "--dirty"]),
        "python (ssehub)": _command([str(setup.hub_python), "--version"]),
        "gevent (ssehub)": _python_version(setup.hub_python, "gevent"),
        "nginx": _command(["nginx", "-v"]),
        "nchan": _command(["dpkg-query", "-W", "-f", "${Version}", "libnginx-mod-nchan"]),
        "redis-server": _command(["redis-server", "--version"]).split(" sha=")[0],
        **{name: _python_version(setup.peers_bin / "python", name) for name in PEER_PACKAGES},
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _command(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError as error:
        return f"unavailable ({error})"
    return (done.stdout or done.stderr).strip()


def _python_version(python: Path, package: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    return _command([str(python), "-c", code])


def table(results: dict) -> str:
    """Markdown: one row per figure that some server has, ssehub/nchan where it makes sense."""
    lines = [
        "| | " + " | ".join(HEADINGS[c] for c in COLUMNS) + " | ssehub/nchan |",
        "|---|" + "---:|" * (len(COLUMNS) + 1),
    ]
    for row in ROWS:
        per_server = results.get(row.workload)
        if not per_server:
            continue
        values = {column: _value(row, per_server.get(column)) for column in COLUMNS}
        cells = [_format(values[column], row.digits, per_server.get(column)) for column in COLUMNS]
        lines.append(f"| {_label(row, per_server)} | " + " | ".join(cells) + f" | {_ratio(row, values)} |")
    return "\n".join(lines)


def _label(row: Row, per_server: dict) -> str:
    """The row's label with the run's sizes (quick runs are smaller), from the first server that has them."""
    for result in per_server.values():
        try:
            return row.label.format(**result)
        except (KeyError, ValueError):
            continue
    return row.label


def _value(row: Row, result: dict | None) -> float | None:
    if not result or "error" in result:
        return None
    return row.value(result)


def _format(value: float | None, digits: int, result: dict | None) -> str:
    if result is None:
        return "—"
    if "error" in result:
        return "error"
    if value is None:
        return "none" if "steps" in result else "—"
    return f"{value:,.{digits}f}"


def _ratio(row: Row, values: dict) -> str:
    """ssehub (whichever broker this row measured; embedded first) over nchan."""
    hub = values["ssehub"] if values["ssehub"] is not None else values["ssehub-redis"]
    if not row.ratio or hub is None or not values["nchan"]:
        return "—"
    return f"{hub / values['nchan']:.2f}×"


def stepping_notes(results: dict) -> list[str]:
    """Where each rate stepping stopped, and why: the table shows only the best step."""
    notes = []
    for workload in ("w1", "w2", "w3"):
        for column, result in (results.get(workload) or {}).items():
            steps = result.get("steps") or []
            if steps and steps[-1].get("failure"):
                last = steps[-1]
                notes.append(
                    f"{workload} {HEADINGS[column]}: failed at {last['target_rate']} msg/s ({last['failure']})"
                )
            elif steps:
                notes.append(f"{workload} {HEADINGS[column]}: passed every step up to {steps[-1]['target_rate']} msg/s")
    return notes


def size_notes(results: dict) -> list[str]:
    """Where a server held fewer streams than the others (flask-sse: two open files per stream)."""
    notes = []
    for workload, per_server in results.items():
        sizes = {column: result["streams"] for column, result in per_server.items() if "streams" in result}
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{HEADINGS[column]} {count:,}" for column, count in sizes.items())
            notes.append(f"{workload}: streams held: {listed}")
    return notes


def errors(results: dict) -> list[str]:
    return [
        f"{workload} {HEADINGS.get(column, column)}: {result['error']}"
        for workload, per_server in results.items()
        for column, result in per_server.items()
        if "error" in result
    ]


def render(started: datetime.datetime, machine: dict, results: dict, output: Path, logs: Path) -> str:
    """The whole printed report: when, where, the table, then why each stepping stopped."""
    lines = [f"# ssehub and its peers, {started:%Y-%m-%d %H:%M %Z}", ""]
    lines += [f"- {name}: {value}" for name, value in machine.items()]
    lines += ["", table(results), ""]
    lines += [f"- {note}" for note in stepping_notes(results) + size_notes(results) + errors(results)]
    lines += ["", f"Raw results: {output}; logs: {logs}/"]
    return "\n".join(lines)


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
