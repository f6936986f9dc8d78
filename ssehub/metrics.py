"""GET /metrics: this process's counters in the Prometheus text format (0.0.4)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Sample:
    name: str
    kind: str  # "gauge" or "counter"
    help: str
    value: float


def render(samples: list[Sample]) -> str:
    lines = []
    for sample in samples:
        lines += [
            f"# HELP {sample.name} {sample.help}",
            f"# TYPE {sample.name} {sample.kind}",
            f"{sample.name} {sample.value:g}",
        ]
    return "\n".join(lines) + "\n"
