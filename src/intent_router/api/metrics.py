"""Render the service's counters in the Prometheus text exposition format."""

from __future__ import annotations

Sample = tuple[dict[str, str], float]
Metrics = dict[str, tuple[str, str, list[Sample]]]


def render_prometheus(metrics: Metrics) -> str:
    """``metrics``: name -> (type, help, [(labels, value), ...])."""
    lines: list[str] = []
    for name, (kind, help_text, samples) in sorted(metrics.items()):
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
